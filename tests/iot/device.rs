//! The device side: an MQTT login, and a client that queues what it receives.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

/// A device's MQTT login on the device port: its thing name and the password its app issued.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Login {
    pub(crate) fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// From an API reply's `mqtt` object.
    pub(crate) fn of(mqtt: &Value) -> Self {
        Self::new(
            mqtt["username"].as_str().expect("an MQTT user name"),
            mqtt["password"].as_str().expect("an MQTT password"),
        )
    }
}

/// MQTT options for `url` as `login` (client id = user name).
pub(crate) fn mqtt_options(url: &str, login: &Login) -> MqttOptions {
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut opts = MqttOptions::new(&login.user, host, port.parse::<u16>().unwrap());
    opts.set_credentials(&login.user, &login.password);
    opts
}

/// A device: an MQTT client whose received messages queue up in `inbox`.
pub(crate) struct Device {
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    subacks: mpsc::UnboundedReceiver<()>,
}

impl Device {
    pub(crate) async fn connect(url: &str, login: &Login) -> Self {
        let (client, mut events) = AsyncClient::new(mqtt_options(url, login), 64);
        let (tx, inbox) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            inbox,
            subacks,
        }
    }

    pub(crate) async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    pub(crate) async fn send(&self, topic: &str, payload: Value) {
        self.publish(topic, payload.to_string()).await;
    }

    pub(crate) async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.subacks.recv())
            .await
            .expect("SUBACK");
    }

    pub(crate) async fn receive(&mut self) -> (String, Value) {
        let (topic, bytes) = tokio::time::timeout(Duration::from_secs(10), self.inbox.recv())
            .await
            .expect("a command within 10 s")
            .unwrap();
        (topic, serde_json::from_slice(&bytes).unwrap())
    }
}
