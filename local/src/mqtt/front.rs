//! The embedded broker's device port. rumqttd acknowledges a QoS 1 message as soon as it holds
//! it in memory; a device's PUBACK must mean stored. So devices connect here, and each
//! connection is relayed to rumqttd packet by packet, in order, except that a PUBLISH a topic
//! rule takes goes on to the broker, and so to its PUBACK, only after the engine stored it or
//! kept it at the rule's error action. Should civic-local stop before that, the device never
//! saw an acknowledgement and sends the message again. Everything from the broker (CONNACK,
//! SUBACK, PUBACKs, the commands a device subscribed to) goes back unchanged.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use rumqttc::mqttbytes::{self, FixedHeader, PacketType};
use rumqttc::{Connect, Publish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::lanes::Lanes;
use super::{Engine, MAX_PAYLOAD};

/// Packets read ahead of the broker per connection: past this a device waits for its backlog.
const MAX_QUEUED: usize = 1024;

pub(super) async fn serve(listener: TcpListener, broker: SocketAddr, engine: Arc<Engine>) {
    loop {
        match listener.accept().await {
            Ok((device, peer)) => {
                let engine = engine.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(device, broker, engine).await {
                        tracing::warn!(%peer, error = %e, "MQTT device connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting an MQTT connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn relay(device: TcpStream, broker: SocketAddr, engine: Arc<Engine>) -> std::io::Result<()> {
    let upstream = TcpStream::connect(broker).await?;
    device.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (mut from_device, mut to_device) = device.into_split();
    let (mut from_broker, mut to_broker) = upstream.into_split();
    let mut down =
        tokio::spawn(async move { tokio::io::copy(&mut from_broker, &mut to_device).await });
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut lanes = Lanes::default();
    let mut client_id = None;
    let mut reading = true;
    let result = loop {
        tokio::select! {
            read = from_device.read_buf(&mut buf), if reading && lanes.len() < MAX_QUEUED => {
                match read {
                    // The device is gone: what it sent is still handled and passed on.
                    Ok(0) => reading = false,
                    Ok(_) => loop {
                        match next_frame(&mut buf) {
                            Ok(Some((header, frame))) => {
                                queue(&engine, &mut lanes, &mut client_id, header, frame)
                            }
                            Ok(None) => break,
                            // As rumqttd would: a broken or oversized packet ends the connection.
                            Err(e) => {
                                reading = false;
                                tracing::warn!(error = ?e, "bad MQTT packet from a device");
                                break;
                            }
                        }
                    },
                    Err(e) => break Err(e),
                }
            }
            Some((frame, ok)) = lanes.next(), if !lanes.is_empty() => {
                if !ok {
                    break Err(unstored());
                }
                // With everything else already done, in one write.
                let mut batch = frame.to_vec();
                let mut refused = false;
                while let Some(Some((frame, ok))) = lanes.next().now_or_never() {
                    if !ok {
                        refused = true;
                        break;
                    }
                    batch.extend_from_slice(&frame);
                }
                if let Err(e) = to_broker.write_all(&batch).await {
                    break Err(e);
                }
                if refused {
                    break Err(unstored());
                }
            }
            // The broker closed the connection (a refused CONNECT, a keep-alive timeout).
            _ = &mut down => break Ok(()),
            else => break Ok(()),
        }
    };
    let _ = to_broker.shutdown().await;
    down.abort();
    result
}

fn unstored() -> std::io::Error {
    std::io::Error::other(
        "a message could be neither stored nor kept; dropping the connection unacknowledged",
    )
}

/// The next whole packet in `buf`, if it has arrived.
fn next_frame(buf: &mut BytesMut) -> Result<Option<(FixedHeader, Bytes)>, mqttbytes::Error> {
    // The limit counts the variable header too: a full-size payload plus its topic fits.
    match mqttbytes::check(buf.iter(), MAX_PAYLOAD + 1024) {
        Ok(header) => Ok(Some((header, buf.split_to(header.frame_length()).freeze()))),
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Queues a packet for the broker: a PUBLISH that a rule takes behind the engine's work on its
/// topic, anything else just behind what came before it.
fn queue(
    engine: &Arc<Engine>,
    lanes: &mut Lanes<Bytes>,
    client_id: &mut Option<String>,
    header: FixedHeader,
    frame: Bytes,
) {
    match header.packet_type() {
        // `clientid()` in the rules' SQL.
        Ok(PacketType::Connect) => {
            *client_id = Connect::read(header, frame.clone())
                .ok()
                .map(|c| c.client_id)
        }
        Ok(PacketType::Publish) => {
            if let Ok(p) = Publish::read(header, frame.clone())
                && engine.routes(&p.topic)
            {
                let work = engine
                    .clone()
                    .handle(p.topic.clone(), p.payload, client_id.clone());
                lanes.push(Some(p.topic), work, frame);
                return;
            }
        }
        _ => {}
    }
    lanes.push(None, async { true }.boxed(), frame);
}
