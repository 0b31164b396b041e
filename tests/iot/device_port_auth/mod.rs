//! Issue 15, item 2: the device port's logins and topic ACL. Each boundary is attacked with a
//! real MQTT client and seen refused; the platform's own paths keep working.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    SubscribeFilter, SubscribeReasonCode,
};
use serde_json::Value;

use crate::device::{Login, mqtt_options};

mod logins;
mod topics;

/// A connection the test drives itself, to see each answer and the close.
pub(crate) struct Raw {
    client: AsyncClient,
    events: EventLoop,
}

impl Raw {
    /// Connects with `opts`: the CONNACK's code when the broker refuses.
    pub(crate) async fn connect(opts: MqttOptions) -> Result<Self, ConnectReturnCode> {
        let (client, mut events) = AsyncClient::new(opts, 16);
        loop {
            let polled = tokio::time::timeout(Duration::from_secs(10), events.poll()).await;
            match polled.expect("a CONNACK within 10 s") {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(Self { client, events }),
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                Err(e) => panic!("connecting: {e}"),
            }
        }
    }

    pub(crate) async fn as_device(url: &str, login: &Login) -> Self {
        let connected = Self::connect(mqtt_options(url, login)).await;
        connected.unwrap_or_else(|code| panic!("{} refused: {code:?}", login.user))
    }

    /// Publishes at QoS 1: `true` once acknowledged, `false` if the port closed the
    /// connection instead.
    pub(crate) async fn publish(&mut self, topic: &str, payload: &Value) -> bool {
        let body = payload.to_string();
        let client = &self.client;
        client
            .publish(topic, QoS::AtLeastOnce, false, body)
            .await
            .unwrap();
        loop {
            let polled = tokio::time::timeout(Duration::from_secs(10), self.events.poll());
            match polled.await.expect("a PUBACK or a close within 10 s") {
                Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Subscribes to `filters` in one SUBSCRIBE: the SUBACK's codes.
    pub(crate) async fn subscribe(&mut self, filters: &[&str]) -> Vec<SubscribeReasonCode> {
        let filters =
            (filters.iter()).map(|f| SubscribeFilter::new(f.to_string(), QoS::AtLeastOnce));
        self.client.subscribe_many(filters).await.unwrap();
        loop {
            let polled = tokio::time::timeout(Duration::from_secs(10), self.events.poll());
            match polled.await.expect("a SUBACK within 10 s") {
                Ok(Event::Incoming(Packet::SubAck(ack))) => return ack.return_codes,
                Ok(_) => {}
                Err(e) => panic!("subscribing: {e}"),
            }
        }
    }

    /// The next message within `wait`, if one comes.
    pub(crate) async fn receive(&mut self, wait: Duration) -> Option<(String, Value)> {
        let next = async {
            loop {
                match self.events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        return (p.topic.clone(), serde_json::from_slice(&p.payload).unwrap());
                    }
                    Ok(_) => {}
                    Err(e) => panic!("receiving: {e}"),
                }
            }
        };
        tokio::time::timeout(wait, next).await.ok()
    }
}

/// Options for `client_id`, with `login` as (user name, password) if given.
pub(crate) fn options(url: &str, client_id: &str, login: Option<(&str, &str)>) -> MqttOptions {
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut opts = MqttOptions::new(client_id, host, port.parse::<u16>().unwrap());
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    opts
}
