//! Devices over MQTT, locally: an embedded broker (rumqttd) or an external one, the template's
//! topic rules evaluated on every message, and commands from the apps published to it.
//!
//! The rule engine subscribes at QoS 1 with a persistent session and acknowledges each message
//! only after its consumers returned, in the order the broker sent them (rumqttd takes no other
//! order): what the broker counts as delivered to the rules is stored. Messages on one topic
//! (one device) are handled one after another, different topics concurrently.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use civic_core::Platform;
use civic_core::iot::IotHandler;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use futures::stream::{FuturesOrdered, StreamExt};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use serde::Serialize;
use serde_json::Value;

use crate::iot_rules::{self, Compiled};

#[derive(Clone, Debug, clap::Args)]
pub struct MqttOpts {
    /// Port of the embedded MQTT broker (0 picks a free one).
    #[arg(long, default_value_t = 1883)]
    pub mqtt_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub mqtt_host: IpAddr,
    /// Use this broker (e.g. `mqtt://127.0.0.1:1883`, mosquitto) instead of the embedded one.
    #[arg(long)]
    pub mqtt_url: Option<String>,
}

/// Counts per rule, shown at `/_local/iot`.
#[derive(Default, Serialize)]
pub struct Counters {
    /// Messages the rule's `FROM` and `WHERE` selected.
    pub matched: AtomicU64,
    /// Handled by the consumer.
    pub stored: AtomicU64,
    /// Refused by the consumer: malformed, wrong types, unknown device (logged).
    pub rejected: AtomicU64,
    /// Failed in the consumer for another reason (logged).
    pub failed: AtomicU64,
}

#[derive(Default, Serialize)]
pub struct Stats {
    /// Messages whose payload was not JSON (logged, acknowledged, dropped).
    pub malformed: AtomicU64,
    pub rules: HashMap<String, Counters>,
}

struct Consumer {
    compiled: Compiled,
    handler: IotHandler,
}

/// The running device side: the broker's URL and the counters.
pub struct Devices {
    pub url: String,
    pub stats: Arc<Stats>,
}

impl Devices {
    /// Compiles the template's rules (refusing unsupported ones), starts the embedded broker
    /// unless `--mqtt-url` names one, points the platform's publisher at the broker and starts
    /// the rule engine with handlers built on that platform.
    pub async fn start(
        opts: &MqttOpts,
        yaml: &str,
        platform: Platform,
    ) -> Result<(Platform, Self)> {
        let rules = iot_rules::compile(&iot_rules::parse(yaml)?)?;
        let url = match &opts.mqtt_url {
            Some(url) => url.clone(),
            None => {
                let addr = embedded_broker(SocketAddr::new(opts.mqtt_host, opts.mqtt_port))?;
                format!("mqtt://{addr}")
            }
        };
        // Unique per process: two programs on one external broker must not evict each other.
        let id = format!("civic-local-commands-{}", std::process::id());
        let publisher =
            civic_iot::mqtt::MqttPublisher::connect(&url, &id).map_err(anyhow::Error::msg)?;
        let platform = platform.with_publisher(Arc::new(publisher));
        let stats = Arc::new(Stats {
            malformed: AtomicU64::new(0),
            rules: rules
                .iter()
                .map(|r| (r.id.clone(), Counters::default()))
                .collect(),
        });
        let consumers = rules
            .into_iter()
            .map(|compiled| Consumer {
                handler: (compiled.function.handler)(&platform),
                compiled,
            })
            .collect();
        run_rules(&url, consumers, stats.clone()).map_err(anyhow::Error::msg)?;
        Ok((platform, Self { url, stats }))
    }

    /// `GET /_local/iot`: the broker URL and the counters.
    pub fn router(&self) -> Router {
        let (url, stats) = (self.url.clone(), self.stats.clone());
        Router::new().route(
            "/_local/iot",
            axum::routing::get(move || async move {
                axum::Json(serde_json::json!({"broker": url, "stats": &*stats}))
            }),
        )
    }
}

/// rumqttd on `addr`, in threads of its own. Port 0 is resolved first, so the broker's address
/// is known (and a port in use is an error here rather than a log line of the broker's).
fn embedded_broker(addr: SocketAddr) -> Result<SocketAddr> {
    let addr = std::net::TcpListener::bind(addr)
        .with_context(|| format!("MQTT port {addr} is not free"))?
        .local_addr()?;
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        // IoT Core's own limit on a message.
        max_payload_size: 128 * 1024,
        max_inflight_count: 256,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "civic-local".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = rumqttd::Config {
        router: rumqttd::RouterConfig {
            max_connections: 1024,
            max_outgoing_packet_count: 256,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 8,
            ..Default::default()
        },
        v4: Some(HashMap::from([("v4".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "MQTT broker stopped");
            }
        })?;
    // Clients connect from the start: wait until it listens.
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            tracing::info!("MQTT broker on mqtt://{addr}");
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("the MQTT broker did not start listening on {addr}")
}

/// Subscribes to every rule's `FROM` and feeds messages through the consumers.
fn run_rules(url: &str, consumers: Vec<Consumer>, stats: Arc<Stats>) -> Result<(), String> {
    let mut opts = civic_iot::mqtt::options(url, "civic-local-rules")?;
    opts.set_manual_acks(true)
        .set_clean_session(false)
        .set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let consumers = Arc::new(consumers);
    let filters: Vec<String> = {
        let mut f: Vec<String> = consumers
            .iter()
            .map(|c| c.compiled.rule.from.clone())
            .collect();
        f.sort();
        f.dedup();
        f
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Publish>();
    tokio::spawn(pipeline(client.clone(), rx, consumers, stats));
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                // A new session (first connection, or the broker forgot us): subscribe again.
                Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => {
                    for f in &filters {
                        if let Err(e) = client.try_subscribe(f, QoS::AtLeastOnce) {
                            tracing::error!(filter = f, error = %e, "subscribing");
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "rule engine lost the broker; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok(())
}

/// Handles messages concurrently across topics, in order within a topic, and acknowledges
/// them in arrival order once handled.
async fn pipeline(
    client: AsyncClient,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Publish>,
    consumers: Arc<Vec<Consumer>>,
    stats: Arc<Stats>,
) {
    type Done = Shared<BoxFuture<'static, ()>>;
    let mut lanes: HashMap<String, Done> = HashMap::new();
    let mut pending: FuturesOrdered<BoxFuture<'static, Publish>> = FuturesOrdered::new();
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let topic = msg.topic.clone();
                let before = lanes.remove(&topic);
                let (consumers, stats, m) = (consumers.clone(), stats.clone(), msg.clone());
                let done: Done = async move {
                    if let Some(before) = before {
                        before.await;
                    }
                    handle(&consumers, &stats, &m).await;
                }
                .boxed()
                .shared();
                lanes.insert(topic, done.clone());
                pending.push_back(done.map(move |()| msg).boxed());
            }
            Some(msg) = pending.next(), if !pending.is_empty() => {
                if lanes.get(&msg.topic).is_some_and(|d| d.peek().is_some()) {
                    lanes.remove(&msg.topic);
                }
                if let Err(e) = client.ack(&msg).await {
                    tracing::warn!(error = %e, "acknowledging a message");
                }
            }
        }
    }
}

/// Every rule the message matches, as IoT Core would: evaluate, invoke, count.
async fn handle(consumers: &[Consumer], stats: &Stats, msg: &Publish) {
    let Ok(payload) = serde_json::from_slice::<Value>(&msg.payload) else {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            topic = msg.topic,
            bytes = msg.payload.len(),
            "message is not JSON; dropped"
        );
        return;
    };
    let ctx = civic_iot::Context {
        topic: &msg.topic,
        // MQTT 3.1.1 does not tell subscribers who published.
        client_id: None,
        timestamp_ms: chrono::Utc::now().timestamp_millis(),
    };
    for c in consumers {
        let Some(output) = c.compiled.rule.apply(&payload, &ctx) else {
            continue;
        };
        let n = &stats.rules[&c.compiled.id];
        n.matched.fetch_add(1, Ordering::Relaxed);
        let (rule, function) = (&c.compiled.id, c.compiled.function.name);
        // Retried twice like Lambda's asynchronous invocations, for failures other than the
        // message's own; a panic in a consumer must not take the engine down with it.
        let mut attempt = 0;
        let outcome = loop {
            let run = std::panic::AssertUnwindSafe((c.handler)(output.clone()));
            match run.catch_unwind().await {
                Ok(Err(e)) if !e.status().is_client_error() && attempt < 2 => {
                    attempt += 1;
                    tracing::warn!(rule, function, error = %e, attempt, "consumer failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                outcome => break outcome,
            }
        };
        match outcome {
            Ok(Ok(_)) => {
                n.stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) if e.status().is_client_error() => {
                n.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(rule, function, topic = msg.topic, error = %e, "message rejected");
            }
            Ok(Err(e)) => {
                n.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(rule, function, topic = msg.topic, error = %e, "consumer failed");
            }
            Err(_) => {
                n.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(rule, function, topic = msg.topic, "consumer panicked");
            }
        }
    }
}
