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
//!
//! **Bounded:** at most `--mqtt-max-devices` connections are relayed at once (the next CONNECT
//! gets CONNACK 3, server unavailable) and as many more may be in their handshake (past that a
//! new socket is closed unanswered). A connection reads ahead of the broker at most
//! [`MAX_QUEUED`] packets and [`MAX_QUEUED_BYTES`]; past either the device's own socket fills
//! and it waits: TCP back-pressure, nothing dropped.

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
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use super::gate::{Gate, Peer};
use super::lanes::Lanes;
use super::{Engine, MAX_PAYLOAD};

/// Packets read ahead of the broker per connection: past this a device waits for its backlog.
const MAX_QUEUED: usize = 1024;
/// Bytes of packets read ahead of the broker per connection, for the same reason: two
/// full-size messages, while a thousand small ones still fit (1024 full-size ones would be
/// 128 MiB a connection).
const MAX_QUEUED_BYTES: usize = 2 * MAX_PAYLOAD;
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
    /// Connections relayed to the broker (`--mqtt-max-devices`).
    sessions: Arc<Semaphore>,
    /// Connections still in their handshake, as many again.
    handshakes: Arc<Semaphore>,
}

impl Front {
    pub fn new(
        broker: SocketAddr,
        engine: Arc<Engine>,
        gate: Gate,
        login: Login,
        max: u32,
    ) -> Self {
        Self {
            broker,
            engine,
            gate,
            login,
            sessions: Arc::new(Semaphore::new(max as usize)),
            handshakes: Arc::new(Semaphore::new(max as usize)),
        }
    }
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
                // Sockets that never send a CONNECT cost a task each: closed past the bound.
                let Ok(handshake) = front.handshakes.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many MQTT handshakes at once; closing");
                    continue;
                };
                let front = front.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(device, front, handshake).await {
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

async fn relay(
    device: TcpStream,
    front: Arc<Front>,
    handshake: OwnedSemaphorePermit,
) -> std::io::Result<()> {
    device.set_nodelay(true)?;
    let (mut from_device, mut to_device) = device.into_split();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let connect = tokio::time::timeout(HANDSHAKE, read_connect(&mut from_device, &mut buf)).await;
    drop(handshake);
    let mut connect = match connect {
        Ok(Ok(Ok(connect))) => connect,
        Ok(Ok(Err(code))) => return refuse(&mut to_device, code, "").await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(std::io::Error::other("no CONNECT within 10 s")),
    };
    // Before the login is checked: a full port answers at once, and checks nothing.
    let Ok(_session) = front.sessions.clone().try_acquire_owned() else {
        let code = ConnectReturnCode::ServiceUnavailable;
        return refuse(&mut to_device, code, &connect.client_id).await;
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
    // Bytes of the packets in `lanes`.
    let mut queued = 0;
    let result = loop {
        if !reading && lanes.is_empty() {
            break Ok(());
        }
        let room = lanes.len() < MAX_QUEUED && queued < MAX_QUEUED_BYTES;
        tokio::select! {
            read = from_device.read_buf(&mut buf), if reading && room => {
                match read {
                    // The device is gone: what it sent is still handled and passed on.
                    Ok(0) => reading = false,
                    Ok(_) => {
                        // As a broker must: what came before is passed on, then the connection
                        // ends.
                        let done = queue_all(&front, &peer, &client_id, &mut lanes, &mut buf);
                        queued += done.queued;
                        if let Err(why) = done.result {
                            reading = false;
                            tracing::warn!(why, client = client_id, "closing an MQTT device connection");
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
            Some((out, ok)) = lanes.next(), if !lanes.is_empty() => {
                match release(out, ok, &mut lanes, &mut to_broker, &to_device).await {
                    Ok(released) => queued -= released,
                    Err(e) => break Err(e),
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

/// Sends `first` and every other packet already released, the broker's part in one write;
/// returns their bytes.
async fn release(
    first: Out,
    ok: bool,
    lanes: &mut Lanes<Out>,
    to_broker: &mut OwnedWriteHalf,
    to_device: &Mutex<OwnedWriteHalf>,
) -> std::io::Result<usize> {
    let mut ready = vec![(first, ok)];
    while let Some(Some(next)) = lanes.next().now_or_never() {
        ready.push(next);
    }
    let released = ready.iter().map(|(out, _)| out.len()).sum();
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
    to_broker.write_all(&batch).await?;
    Ok(released)
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Broker(frame) | Out::Device(frame) => frame.len(),
        }
    }
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

/// What [`queue_all`] queued, in bytes, and whether the connection may go on.
struct Queued {
    queued: usize,
    result: Result<(), String>,
}

/// Queues every whole packet in `buf`; an error ends the connection after what came before.
fn queue_all(
    front: &Arc<Front>,
    peer: &Peer,
    client_id: &Option<String>,
    lanes: &mut Lanes<Out>,
    buf: &mut BytesMut,
) -> Queued {
    let mut queued = 0;
    let result = loop {
        let (header, frame) = match next_frame(buf) {
            Ok(Some(packet)) => packet,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match queue(front, peer, client_id, lanes, header, frame) {
            Ok(bytes) => queued += bytes,
            Err(e) => break Err(e),
        }
    };
    Queued { queued, result }
}

/// Queues a packet: a PUBLISH that a rule takes behind the engine's work on its topic,
/// anything else just behind what came before it; refuses what the peer may not do. Returns
/// the bytes queued.
fn queue(
    front: &Arc<Front>,
    peer: &Peer,
    client_id: &Option<String>,
    lanes: &mut Lanes<Out>,
    header: FixedHeader,
    frame: Bytes,
) -> Result<usize, String> {
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
                let bytes = frame.len();
                lanes.push(Some(p.topic), work, Out::Broker(frame));
                return Ok(bytes);
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
                let bytes = ack.len();
                lanes.push(None, ready(), Out::Device(ack));
                return Ok(bytes);
            }
        }
        Ok(_) => {}
    }
    let bytes = frame.len();
    lanes.push(None, ready(), Out::Broker(frame));
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use civic_core::Platform;
    use rumqttc::QoS;

    use super::*;

    /// A device floods a rule's topic with 100 KiB messages while the rule's consumer never
    /// finishes: the front stops reading at its bound, and the device's writes stall. Without
    /// the bound on bytes it would read 1024 of them (100 MiB) into memory.
    #[tokio::test]
    async fn a_flooding_device_is_held_back_at_the_read_ahead_bound() {
        let dir = tempfile::tempdir().unwrap();
        let backend = civic_store::Backend::embedded(dir.path()).unwrap();
        let platform = Platform::local(dir.path(), backend, Default::default()).unwrap();
        let yaml = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
        let yaml = std::fs::read_to_string(yaml).unwrap();
        let rules = crate::iot_rules::parse(&yaml).unwrap();
        let mut engine = Engine::new(crate::iot_rules::compile(&rules).unwrap(), &platform);
        for c in &mut engine.consumers {
            c.handler = Arc::new(|_| Box::pin(std::future::pending()));
        }
        // A broker that takes the connection and never answers.
        let broker = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker_at = broker.local_addr().unwrap();
        tokio::spawn(async move {
            let _held = broker.accept().await.unwrap();
            std::future::pending::<()>().await
        });
        let gate = Gate::new(&platform, crate::registry::DEVICES, false);
        let login = Login::new("front", "secret");
        let front = Front::new(broker_at, Arc::new(engine), gate, login, 4);
        // Small socket buffers (the kernel would otherwise tune them up to tens of MiB), so
        // what the device gets written is what the front read.
        let small = || {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(64 << 10).unwrap();
            socket.set_send_buffer_size(64 << 10).unwrap();
            socket
        };
        let port = small();
        port.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = port.listen(16).unwrap();
        let at = port.local_addr().unwrap();
        tokio::spawn(serve(port, Arc::new(front)));
        let mut device = small().connect(at).await.unwrap();
        device
            .write_all(&encode(|b| Connect::new("flood").write(b)))
            .await
            .unwrap();
        let payload = serde_json::json!({"status": "on", "errorDetails": "x".repeat(100 << 10)});
        let topic = "streetlight/lights/SL1/status";
        let publish = Publish::new(topic, QoS::AtMostOnce, payload.to_string());
        let frame = encode(|b| publish.write(b));
        let mut taken = 0;
        for _ in 0..1024 {
            let write = device.write_all(&frame);
            match tokio::time::timeout(Duration::from_millis(500), write).await {
                Ok(Ok(())) => taken += frame.len(),
                _ => break,
            }
        }
        // What the front read ahead (256 KiB and one read) and the sockets' small buffers.
        assert!(taken < 2 << 20, "{} KiB taken from one device", taken >> 10);
        assert!(
            taken > MAX_QUEUED_BYTES,
            "{taken} bytes: the device got going at all"
        );
    }
}
