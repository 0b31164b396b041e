//! The embedded broker's device port. Devices connect here, never to the broker itself:
//!
//! - **Who:** the CONNECT comes first, within [`HANDSHAKE`]; the [`Gate`] admits it (a device's
//!   thing name and the credential its app issued) or refuses it with the CONNACK code that
//!   says why, and nothing of a refused connection reaches the broker. An admitted CONNECT goes
//!   on with the front's own login: the broker's listener takes only the front and the platform.
//! - **What:** a PUBLISH outside the device's own inbound topics closes the connection. MQTT
//!   3.1.1 has no negative PUBACK; a broker that will not take a message must acknowledge it
//!   anyway or disconnect (3.3.5), and acknowledging a message that was dropped would be a lie
//!   to the device. A SUBSCRIBE with a filter outside its own command topics is answered here,
//!   with SUBACK failure (0x80) for each of its filters, and subscribes nothing.
//! - **Durable:** rumqttd acknowledges a QoS 1 message as soon as it holds it in memory; a
//!   device's PUBACK must mean stored. So each connection is relayed packet by packet, in
//!   order, except that a PUBLISH a topic rule takes goes on to the broker, and so to its
//!   PUBACK, only after the engine stored it or kept it at the rule's error action. Should
//!   civic-local stop before that, the device never saw an acknowledgement and sends again.
//!
//! Everything from the broker (CONNACK, SUBACK, PUBACKs, commands) goes back unchanged, whole
//! packets at a time, so the front's own answers never land inside one of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use rumqttc::mqttbytes::{self, FixedHeader, PacketType};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, Login, Publish, SubAck, Subscribe, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use super::gate::{Gate, Peer};
use super::lanes::Lanes;
use super::{Engine, MAX_PAYLOAD};

/// Packets read ahead of the broker per connection: past this a device waits for its backlog.
const MAX_QUEUED: usize = 1024;
/// How long a new connection has to send its CONNECT.
pub(super) const HANDSHAKE: Duration = Duration::from_secs(10);
/// The largest packet the broker sends: a full-size payload with the longest topic.
const MAX_DOWN: usize = MAX_PAYLOAD + 64 * 1024 + 16;

/// What the device port needs: the broker behind it, the rule engine, the gate, and the login
/// the broker's listener takes from the front.
pub(super) struct Front {
    pub broker: SocketAddr,
    pub engine: Arc<Engine>,
    pub gate: Gate,
    pub login: Login,
}

/// A packet on its way out, in the order the device sent what caused it.
enum Out {
    Broker(Bytes),
    /// The front's own answer (a refused SUBSCRIBE's SUBACK).
    Device(Bytes),
}

pub(super) async fn serve(listener: TcpListener, front: Arc<Front>) {
    loop {
        match listener.accept().await {
            Ok((device, peer)) => {
                let front = front.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(device, front).await {
                        tracing::warn!(%peer, error = %e, "MQTT device connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting an MQTT connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn relay(device: TcpStream, front: Arc<Front>) -> std::io::Result<()> {
    device.set_nodelay(true)?;
    let (mut from_device, mut to_device) = device.into_split();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let connect = tokio::time::timeout(HANDSHAKE, read_connect(&mut from_device, &mut buf)).await;
    let mut connect = match connect {
        Ok(Ok(Ok(connect))) => connect,
        Ok(Ok(Err(code))) => return refuse(&mut to_device, code, "").await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(std::io::Error::other("no CONNECT within 10 s")),
    };
    let peer = match front.gate.admit(&connect).await {
        Ok(peer) => peer,
        Err(code) => return refuse(&mut to_device, code, &connect.client_id).await,
    };
    let client_id = peer.client_id(&connect);
    let upstream = TcpStream::connect(front.broker).await?;
    upstream.set_nodelay(true)?;
    let (from_broker, mut to_broker) = upstream.into_split();
    connect.login = Some(front.login.clone());
    to_broker.write_all(&encode(|b| connect.write(b))).await?;
    let to_device = Arc::new(Mutex::new(to_device));
    let mut down = tokio::spawn(down(from_broker, to_device.clone()));
    let mut lanes = Lanes::default();
    let mut reading = true;
    let result = loop {
        if !reading && lanes.is_empty() {
            break Ok(());
        }
        tokio::select! {
            read = from_device.read_buf(&mut buf), if reading && lanes.len() < MAX_QUEUED => {
                match read {
                    // The device is gone: what it sent is still handled and passed on.
                    Ok(0) => reading = false,
                    Ok(_) => {
                        // As a broker must: what came before is passed on, then the connection
                        // ends.
                        if let Err(why) = queue_all(&front, &peer, &client_id, &mut lanes, &mut buf) {
                            reading = false;
                            tracing::warn!(why, client = client_id, "closing an MQTT device connection");
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
            Some((out, ok)) = lanes.next(), if !lanes.is_empty() => {
                if let Err(e) = release(out, ok, &mut lanes, &mut to_broker, &to_device).await {
                    break Err(e);
                }
            }
            // The broker closed the connection (a keep-alive timeout, a session taken over).
            _ = &mut down => break Ok(()),
        }
    };
    let _ = to_broker.shutdown().await;
    down.abort();
    result
}

/// The connection's first packet, which must be a CONNECT: `Err(code)` for one the front
/// answers with a refusing CONNACK, an I/O error for anything else.
async fn read_connect(
    from_device: &mut OwnedReadHalf,
    buf: &mut BytesMut,
) -> std::io::Result<Result<Connect, ConnectReturnCode>> {
    loop {
        if let Some(connect) = first_connect(buf)? {
            return Ok(connect);
        }
        if from_device.read_buf(buf).await? == 0 {
            return Err(std::io::Error::other("closed before its CONNECT"));
        }
    }
}

/// The CONNECT at the start of `buf` once it has fully arrived: `Err(code)` inside for one to
/// refuse with a CONNACK, an I/O error when the first packet is not a CONNECT.
pub(super) fn first_connect(
    buf: &mut BytesMut,
) -> std::io::Result<Option<Result<Connect, ConnectReturnCode>>> {
    let Some((header, frame)) = next_frame(buf).map_err(std::io::Error::other)? else {
        return Ok(None);
    };
    if header.packet_type() != Ok(PacketType::Connect) {
        return Err(std::io::Error::other("the first packet is not a CONNECT"));
    }
    match Connect::read(header, frame) {
        Ok(c) => Ok(Some(Ok(c))),
        Err(mqttbytes::Error::InvalidProtocolLevel(_)) => {
            Ok(Some(Err(ConnectReturnCode::RefusedProtocolVersion)))
        }
        Err(e) => Err(std::io::Error::other(format!("a bad CONNECT: {e:?}"))),
    }
}

async fn refuse(
    to_device: &mut OwnedWriteHalf,
    code: ConnectReturnCode,
    client_id: &str,
) -> std::io::Result<()> {
    tracing::warn!(client = client_id, ?code, "MQTT connection refused");
    to_device
        .write_all(&encode(|b| ConnAck::new(code, false).write(b)))
        .await?;
    to_device.shutdown().await
}

pub(super) fn encode(
    write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>,
) -> Bytes {
    let mut out = BytesMut::new();
    write(&mut out).expect("a packet the front built encodes");
    out.freeze()
}

/// Sends `first` and every other packet already released, the broker's part in one write.
async fn release(
    first: Out,
    ok: bool,
    lanes: &mut Lanes<Out>,
    to_broker: &mut OwnedWriteHalf,
    to_device: &Mutex<OwnedWriteHalf>,
) -> std::io::Result<()> {
    let mut ready = vec![(first, ok)];
    while let Some(Some(next)) = lanes.next().now_or_never() {
        ready.push(next);
    }
    let mut batch = Vec::new();
    for (out, ok) in ready {
        if !ok {
            to_broker.write_all(&batch).await?;
            return Err(unstored());
        }
        match out {
            Out::Broker(frame) => batch.extend_from_slice(&frame),
            Out::Device(frame) => {
                to_broker.write_all(&std::mem::take(&mut batch)).await?;
                to_device.lock().await.write_all(&frame).await?;
            }
        }
    }
    to_broker.write_all(&batch).await
}

/// The broker's packets to the device, whole ones at a time.
async fn down(
    mut from_broker: OwnedReadHalf,
    to_device: Arc<Mutex<OwnedWriteHalf>>,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        if from_broker.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        if let Some(packets) = whole_packets(&mut buf)? {
            to_device.lock().await.write_all(&packets).await?;
        }
    }
}

/// The whole packets at the start of what the broker sent, if any has fully arrived.
pub(super) fn whole_packets(buf: &mut BytesMut) -> std::io::Result<Option<Bytes>> {
    let mut whole = 0;
    loop {
        match mqttbytes::check(buf[whole..].iter(), MAX_DOWN) {
            Ok(header) => whole += header.frame_length(),
            Err(mqttbytes::Error::InsufficientBytes(_)) => break,
            Err(e) => return Err(std::io::Error::other(format!("from the broker: {e:?}"))),
        }
    }
    Ok((whole > 0).then(|| buf.split_to(whole).freeze()))
}

fn unstored() -> std::io::Error {
    std::io::Error::other(
        "a message could be neither stored nor kept; dropping the connection unacknowledged",
    )
}

/// The next whole packet in `buf`, if it has arrived.
pub(super) fn next_frame(buf: &mut BytesMut) -> Result<Option<(FixedHeader, Bytes)>, String> {
    // The limit counts the variable header too: a full-size payload plus its topic fits.
    match mqttbytes::check(buf.iter(), MAX_PAYLOAD + 1024) {
        Ok(header) => Ok(Some((header, buf.split_to(header.frame_length()).freeze()))),
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// Queues every whole packet in `buf`; an error ends the connection after what came before.
fn queue_all(
    front: &Arc<Front>,
    peer: &Peer,
    client_id: &Option<String>,
    lanes: &mut Lanes<Out>,
    buf: &mut BytesMut,
) -> Result<(), String> {
    while let Some((header, frame)) = next_frame(buf)? {
        queue(front, peer, client_id, lanes, header, frame)?;
    }
    Ok(())
}

/// Queues a packet: a PUBLISH that a rule takes behind the engine's work on its topic,
/// anything else just behind what came before it; refuses what the peer may not do.
fn queue(
    front: &Arc<Front>,
    peer: &Peer,
    client_id: &Option<String>,
    lanes: &mut Lanes<Out>,
    header: FixedHeader,
    frame: Bytes,
) -> Result<(), String> {
    let ready = || async { true }.boxed();
    match header.packet_type() {
        Err(e) => return Err(format!("{e:?}")),
        Ok(PacketType::Connect) => return Err("a second CONNECT".into()),
        Ok(PacketType::Publish) => {
            let p = Publish::read(header, frame.clone()).map_err(|e| format!("{e:?}"))?;
            if !front.gate.may_publish(peer, &p.topic) {
                return Err(format!("not authorised to publish on {:?}", p.topic));
            }
            if front.engine.routes(&p.topic) {
                let work =
                    front
                        .engine
                        .clone()
                        .handle(p.topic.clone(), p.payload, client_id.clone());
                lanes.push(Some(p.topic), work, Out::Broker(frame));
                return Ok(());
            }
        }
        Ok(PacketType::Subscribe) => {
            let sub = Subscribe::read(header, frame.clone()).map_err(|e| format!("{e:?}"))?;
            let refused: Vec<&str> = (sub.filters.iter())
                .filter(|f| !front.gate.may_subscribe(peer, &f.path))
                .map(|f| f.path.as_str())
                .collect();
            if !refused.is_empty() {
                tracing::warn!(client = client_id, ?refused, "MQTT subscription refused");
                let codes = vec![SubscribeReasonCode::Failure; sub.filters.len()];
                let ack = encode(|b| SubAck::new(sub.pkid, codes).write(b));
                lanes.push(None, ready(), Out::Device(ack));
                return Ok(());
            }
        }
        Ok(_) => {}
    }
    lanes.push(None, ready(), Out::Broker(frame));
    Ok(())
}
