//! A browser's side of live updates (the live tests, and iot-bench's latency): MQTT 3.1.1
//! over a WebSocket to civic-local's `/mqtt`, as mqtt.js speaks it (subprotocol `mqtt`, one
//! packet per binary message).

use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::SubscribeReasonCode;
use rumqttc::mqttbytes::v4::{self, Packet};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct LiveClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    buf: BytesMut,
    pkid: u16,
}

/// How a connection attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Connected {
    Accepted,
    Refused(v4::ConnectReturnCode),
}

impl LiveClient {
    /// Opens `ws://{addr}/mqtt` and sends a CONNECT as `user` with `password`.
    pub async fn connect(http_url: &str, user: &str, password: &str) -> (Self, Connected) {
        let url = format!("{}/mqtt", http_url.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("the /mqtt WebSocket opens");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .map(|v| v.as_bytes()),
            Some(&b"mqtt"[..]),
            "the server must select the mqtt subprotocol, as browsers require"
        );
        let mut client = Self {
            ws,
            buf: BytesMut::new(),
            pkid: 0,
        };
        let mut connect = v4::Connect::new("browser-picked-id");
        connect.set_login(user, password);
        client.send(|b| connect.write(b)).await;
        let connected = match client.next_packet().await {
            Some(Packet::ConnAck(ack)) if ack.code == v4::ConnectReturnCode::Success => {
                Connected::Accepted
            }
            Some(Packet::ConnAck(ack)) => Connected::Refused(ack.code),
            other => panic!("expected a CONNACK, got {other:?}"),
        };
        (client, connected)
    }

    async fn send(
        &mut self,
        write: impl FnOnce(&mut BytesMut) -> Result<usize, rumqttc::mqttbytes::Error>,
    ) {
        let mut out = BytesMut::new();
        write(&mut out).unwrap();
        // A closed socket shows on the next read.
        let _ = self.ws.send(Message::Binary(out.freeze())).await;
    }

    /// Subscribes to `filters`; the SUBACK's codes, one per filter.
    pub async fn subscribe(&mut self, filters: &[&str]) -> Vec<SubscribeReasonCode> {
        self.pkid += 1;
        let filters: Vec<_> = filters
            .iter()
            .map(|f| v4::SubscribeFilter::new(f.to_string(), QoS::AtMostOnce))
            .collect();
        let mut sub = v4::Subscribe::new_many(filters);
        sub.pkid = self.pkid;
        self.send(|b| sub.write(b)).await;
        match self.next_packet().await {
            Some(Packet::SubAck(ack)) => ack.return_codes,
            other => panic!("expected a SUBACK, got {other:?}"),
        }
    }

    /// Tries to publish: live subscribers may not.
    pub async fn publish(&mut self, topic: &str, payload: &str) {
        let p = v4::Publish::new(topic, QoS::AtMostOnce, payload.as_bytes().to_vec());
        self.send(|b| p.write(b)).await;
    }

    /// The next live message (topic, JSON envelope) within `within`, or `None`.
    pub async fn message(&mut self, within: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.next_packet())
                .await
                .ok()??
            {
                Packet::Publish(p) => {
                    let body = serde_json::from_slice(&p.payload).expect("a JSON envelope");
                    return Some((p.topic, body));
                }
                Packet::PingResp => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Whether the server closed the connection within `within`.
    pub async fn closed(&mut self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.next_packet()).await,
            Ok(None)
        )
    }

    /// The next whole MQTT packet; `None` once the connection is closed.
    async fn next_packet(&mut self) -> Option<Packet> {
        loop {
            match v4::read(&mut self.buf, 1 << 20) {
                Ok(packet) => return Some(packet),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => panic!("a bad packet from the server: {e:?}"),
            }
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("not MQTT: {other:?}"),
            }
        }
    }
}
