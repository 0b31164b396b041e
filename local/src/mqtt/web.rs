//! `GET /mqtt`: live updates for browsers, MQTT 3.1.1 over WebSocket (subprotocol `mqtt`), on
//! the HTTP port, so a page needs no second origin. It plays the part IoT Core's WSS endpoint
//! and the app's custom authorizer play on AWS ([`civic_core::live`]):
//!
//! - **Who:** the first packet is a CONNECT whose user name is an app and whose password is a
//!   credential of that app (an access token). The app's [`LiveScope`] turns it into the topic
//!   filters it may read, until the credential expires; then the connection is closed.
//! - **What:** read only. A PUBLISH closes the connection; a SUBSCRIBE with any filter outside
//!   the grant gets SUBACK failure (0x80) for each of its filters and subscribes nothing.
//! - **Whose session:** the client id is replaced by `web-{app}-{place}` and the session is
//!   clean, so a browser can neither take over a device's session nor resume another's. A
//!   place is one of `--mqtt-max-live`, held by one connection at a time: the broker keeps
//!   every client id it has seen, so ids drawn afresh for each connection would grow its
//!   memory with every page load. With every place taken, `/mqtt` answers 503 with
//!   `Retry-After`.
//!
//! Admitted connections go on to the embedded broker's internal listener with the front's
//! login, like device connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use civic_core::Platform;
use civic_core::live::{LiveAccess, LiveAuthorizer, LiveScope};
use futures::{SinkExt, StreamExt};
use rumqttc::mqttbytes::{FixedHeader, PacketType};
use rumqttc::{ConnAck, Connect, ConnectReturnCode, Login, SubAck, Subscribe, SubscribeReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::front::{HANDSHAKE, encode, first_connect, next_frame, whole_packets};

/// The largest WebSocket message a browser may send: MQTT packets from a live subscriber are
/// small (SUBSCRIBE, PINGREQ); axum's default would let each connection buffer 64 MiB.
const MAX_MESSAGE: usize = 64 * 1024;

/// What `/mqtt` needs: the broker, its login, and each app's live authorizer.
pub(super) struct Web {
    pub broker: SocketAddr,
    pub login: Login,
    pub scopes: HashMap<&'static str, LiveAuthorizer>,
    /// The free places (`--mqtt-max-live`).
    places: Arc<std::sync::Mutex<Vec<usize>>>,
}

/// A connection's place, free again when dropped.
struct Place {
    n: usize,
    places: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.places
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.n);
    }
}

impl Web {
    pub fn new(
        platform: &Platform,
        scopes: &[&LiveScope],
        (broker, login): (SocketAddr, Login),
        max: usize,
    ) -> Self {
        let scopes = scopes
            .iter()
            .map(|s| (s.app.name, (s.authorizer)(platform)))
            .collect();
        Self {
            broker,
            login,
            scopes,
            places: Arc::new(std::sync::Mutex::new((0..max).rev().collect())),
        }
    }

    fn place(&self) -> Option<Place> {
        let n = self
            .places
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()?;
        let places = self.places.clone();
        Some(Place { n, places })
    }

    /// The grant a CONNECT's login earns, or the CONNACK code that refuses it.
    async fn admit(&self, c: &Connect) -> Result<(&'static str, LiveAccess), ConnectReturnCode> {
        let Some(login) = c.login.as_ref().filter(|l| !l.password.is_empty()) else {
            return Err(ConnectReturnCode::BadUserNamePassword);
        };
        let Some((app, authorize)) = self.scopes.get_key_value(login.username.as_str()) else {
            return Err(ConnectReturnCode::BadUserNamePassword);
        };
        match authorize(login.password.clone()).await {
            Ok(Some(access)) if access.expires_at > chrono::Utc::now().timestamp() => {
                Ok((app, access))
            }
            Ok(_) => Err(ConnectReturnCode::NotAuthorized),
            Err(e) => {
                tracing::error!(error = %e, app, "checking a live subscriber's token");
                Err(ConnectReturnCode::ServiceUnavailable)
            }
        }
    }
}

/// `/mqtt`, or a 503 naming why when civic-local uses an external broker.
pub(super) fn router(web: Option<Arc<Web>>) -> Router {
    Router::new().route("/mqtt", get(upgrade)).with_state(web)
}

async fn upgrade(State(web): State<Option<Arc<Web>>>, ws: WebSocketUpgrade) -> Response {
    let Some(web) = web else {
        let why =
            "live updates over /mqtt need the embedded broker (civic-local ran with --mqtt-url)";
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    };
    let Some(place) = web.place() else {
        return crate::busy("too many live connections; retry shortly");
    };
    // Browsers' MQTT clients ask for the `mqtt` subprotocol and fail without it.
    let ws = ws.protocols(["mqtt"]).max_message_size(MAX_MESSAGE);
    ws.on_upgrade(move |socket| async move {
        if let Err(e) = session(socket, web, place).await {
            tracing::debug!(error = %e, "live WebSocket closed");
        }
    })
}

fn other(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

/// The connection's CONNECT, from however many WebSocket messages it arrives in.
async fn read_connect(
    socket: &mut WebSocket,
    buf: &mut BytesMut,
) -> std::io::Result<Result<Connect, ConnectReturnCode>> {
    loop {
        if let Some(connect) = first_connect(buf)? {
            return Ok(connect);
        }
        match socket.recv().await {
            Some(Ok(Message::Binary(b))) => buf.extend_from_slice(&b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(_)) | None => return Err(other("closed or not MQTT before its CONNECT")),
            Some(Err(e)) => return Err(other(e.to_string())),
        }
    }
}

async fn session(mut socket: WebSocket, web: Arc<Web>, place: Place) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    let connect = tokio::time::timeout(HANDSHAKE, read_connect(&mut socket, &mut buf))
        .await
        .map_err(|_| other("no CONNECT within 10 s"))??;
    let admitted = match connect {
        Ok(c) => web.admit(&c).await.map(|grant| (c, grant)),
        Err(code) => Err(code),
    };
    let (mut connect, (app, access)) = match admitted {
        Ok(ok) => ok,
        Err(code) => {
            tracing::warn!(?code, "live WebSocket refused");
            let ack = encode(|b| ConnAck::new(code, false).write(b));
            let _ = socket.send(Message::Binary(ack)).await;
            return Ok(());
        }
    };
    connect.client_id = format!("web-{app}-{}", place.n);
    connect.clean_session = true;
    connect.last_will = None;
    connect.login = Some(web.login.clone());
    let upstream = TcpStream::connect(web.broker).await?;
    upstream.set_nodelay(true)?;
    let (mut from_broker, mut to_broker) = upstream.into_split();
    to_broker.write_all(&encode(|b| connect.write(b))).await?;
    let (mut to_browser, mut from_browser) = socket.split();
    let until = tokio::time::Instant::now()
        + std::time::Duration::from_secs(
            (access.expires_at - chrono::Utc::now().timestamp()).max(0) as u64,
        );
    let mut down = BytesMut::with_capacity(8 * 1024);
    loop {
        tokio::select! {
            msg = from_browser.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    buf.extend_from_slice(&b);
                    while let Some((header, frame)) = next_frame(&mut buf).map_err(other)? {
                        match upward(&access, header, frame)? {
                            Up::Broker(frame) => to_broker.write_all(&frame).await?,
                            Up::Browser(ack) => to_browser.send(Message::Binary(ack)).await.map_err(|e| other(e.to_string()))?,
                        }
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(_)) | None => break,
                Some(Err(e)) => return Err(other(e.to_string())),
            },
            read = from_broker.read_buf(&mut down) => {
                if read? == 0 {
                    break;
                }
                if let Some(packets) = whole_packets(&mut down)? {
                    to_browser.send(Message::Binary(packets)).await.map_err(|e| other(e.to_string()))?;
                }
            }
            // The grant ends with the token: a browser signs in again to go on.
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    let _ = to_broker.shutdown().await;
    let _ = to_browser.close().await;
    Ok(())
}

/// Where a browser's packet goes.
enum Up {
    Broker(Bytes),
    /// The gate's own answer.
    Browser(Bytes),
}

/// Passes a browser's packet on, answers a refused SUBSCRIBE itself, or ends the connection.
fn upward(access: &LiveAccess, header: FixedHeader, frame: Bytes) -> std::io::Result<Up> {
    match header.packet_type().map_err(|e| other(format!("{e:?}")))? {
        PacketType::Publish => Err(other("live subscribers only read")),
        PacketType::Connect => Err(other("a second CONNECT")),
        PacketType::Subscribe => {
            let sub =
                Subscribe::read(header, frame.clone()).map_err(|e| other(format!("{e:?}")))?;
            let granted = |f: &str| (access.filters.iter()).any(|a| civic_iot::topic::covers(a, f));
            if sub.filters.iter().all(|f| granted(&f.path)) {
                return Ok(Up::Broker(frame));
            }
            tracing::warn!(principal = access.principal, "live subscription refused");
            let codes = vec![SubscribeReasonCode::Failure; sub.filters.len()];
            Ok(Up::Browser(encode(|b| {
                SubAck::new(sub.pkid, codes).write(b)
            })))
        }
        _ => Ok(Up::Broker(frame)),
    }
}
