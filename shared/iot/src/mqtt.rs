//! MQTT over rumqttc: civic-local's publisher to its broker, also used by the simulator.

use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, QoS};
use serde_json::Value;

use crate::{PublishError, Publisher};

/// `mqtt://host:port` (or `tcp://`, or plain `host:port`; the port defaults to 1883), with a
/// login as `mqtt://user:password@host:port` (taken as written, not percent-decoded).
pub fn options(url: &str, client_id: &str) -> Result<MqttOptions, String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    let (login, rest) = match rest.rsplit_once('@') {
        Some((login, rest)) => (Some(login.split_once(':').unwrap_or((login, ""))), rest),
        None => (None, rest),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {url:?}"))?),
        None => (rest, 1883),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{url:?} is not an mqtt://host:port URL"));
    }
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    Ok(opts)
}

/// Keeps a client's event loop turning; rumqttc reconnects on the next poll after an error.
pub fn drive(mut events: EventLoop, name: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = events.poll().await {
                tracing::warn!(client = name, error = %e, "MQTT connection lost; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
}

/// Publishes JSON at QoS 1 through one long-lived connection.
pub struct MqttPublisher {
    client: AsyncClient,
    _driver: tokio::task::JoinHandle<()>,
}

impl MqttPublisher {
    pub fn connect(url: &str, client_id: &str) -> Result<Self, String> {
        let (client, events) = AsyncClient::new(options(url, client_id)?, 64);
        Ok(Self {
            client,
            _driver: drive(events, "publisher"),
        })
    }
}

impl Drop for MqttPublisher {
    fn drop(&mut self) {
        self._driver.abort();
    }
}

#[async_trait]
impl Publisher for MqttPublisher {
    async fn publish(&self, topic: &str, payload: &Value) -> Result<(), PublishError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
            .await
            .map_err(|e| PublishError::Transport {
                topic: topic.into(),
                msg: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::options;

    #[test]
    fn urls_name_host_and_port() {
        let o = options("mqtt://127.0.0.1:1884", "c").unwrap();
        assert_eq!(o.broker_address(), ("127.0.0.1".into(), 1884));
        assert_eq!(options("localhost", "c").unwrap().broker_address().1, 1883);
        assert!(options("mqtt://h:port", "c").is_err());
        assert!(options("mqtt://", "c").is_err());
        let o = options("mqtt://dev-1:s3cr:et@127.0.0.1:1885", "c").unwrap();
        assert_eq!(o.broker_address(), ("127.0.0.1".into(), 1885));
        assert_eq!(o.credentials(), Some(("dev-1".into(), "s3cr:et".into())));
        assert_eq!(options("mqtt://h:1", "c").unwrap().credentials(), None);
    }
}
