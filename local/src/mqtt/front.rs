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
        if !reading && lanes.is_empty() {
            break Ok(());
        }
        tokio::select! {
            read = from_device.read_buf(&mut buf), if reading && lanes.len() < MAX_QUEUED => {
                match read {
                    // The device is gone: what it sent is still handled and passed on.
                    Ok(0) => reading = false,
                    Ok(_) => loop {
                        let queued = next_frame(&mut buf).and_then(|frame| match frame {
                            Some((header, frame)) => {
                                queue(&engine, &mut lanes, &mut client_id, header, frame).map(Some)
                            }
                            None => Ok(None),
                        });
                        match queued {
                            Ok(Some(())) => {}
                            Ok(None) => break,
                            // As a broker must: what came before is passed on, then the
                            // connection ends.
                            Err(why) => {
                                reading = false;
                                tracing::warn!(why, "bad MQTT packet from a device; closing");
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
fn next_frame(buf: &mut BytesMut) -> Result<Option<(FixedHeader, Bytes)>, String> {
    // The limit counts the variable header too: a full-size payload plus its topic fits.
    match mqttbytes::check(buf.iter(), MAX_PAYLOAD + 1024) {
        Ok(header) => Ok(Some((header, buf.split_to(header.frame_length()).freeze()))),
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// Queues a packet for the broker: a PUBLISH that a rule takes behind the engine's work on its
/// topic, anything else just behind what came before it. `client_id` is the CONNECT's, which
/// must come first.
fn queue(
    engine: &Arc<Engine>,
    lanes: &mut Lanes<Bytes>,
    client_id: &mut Option<String>,
    header: FixedHeader,
    frame: Bytes,
) -> Result<(), String> {
    match header.packet_type() {
        Err(e) => return Err(format!("{e:?}")),
        // A CONNECT that does not parse is passed on for the broker to refuse.
        Ok(PacketType::Connect) => {
            *client_id = Some(
                Connect::read(header, frame.clone())
                    .map(|c| c.client_id)
                    .unwrap_or_default(),
            )
        }
        Ok(_) if client_id.is_none() => return Err("the first packet is not a CONNECT".into()),
        Ok(PacketType::Publish) => {
            if let Ok(p) = Publish::read(header, frame.clone())
                && engine.routes(&p.topic)
            {
                // `clientid()` in the rules' SQL; an empty one is the broker's to assign.
                let id = client_id.clone().filter(|id| !id.is_empty());
                let work = engine.clone().handle(p.topic.clone(), p.payload, id);
                lanes.push(Some(p.topic), work, frame);
                return Ok(());
            }
        }
        Ok(_) => {}
    }
    lanes.push(None, async { true }.boxed(), frame);
    Ok(())
}
