//! Devices over MQTT, locally: an embedded broker (rumqttd) or an external one, the template's
//! topic rules evaluated on every message, and commands from the apps published to it.
//!
//! With the embedded broker, devices connect to [`front`]: each logs in as its thing name with
//! the credential its app issued, may publish only on its own inbound topics and subscribe only
//! to its own commands ([`gate`]), and a message goes on to the broker (and so to its PUBACK)
//! only once the rules stored it: acknowledged means durable. The platform publishes commands
//! on the broker's internal listener, which takes only the platform's and the front's login.
//! With an external broker the engine subscribes at QoS 1 with a persistent session and
//! acknowledges each message only after storing it; the device's PUBACK is then the broker's,
//! and durable only as far as the broker persists. Either way, what a consumer cannot store
//! (malformed, unknown device, a failing store) is kept at the rule's error action.

mod front;
mod gate;
mod lanes;
mod web;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use civic_core::Platform;
use civic_core::iot::{DeviceClass, IotHandler};
use civic_core::live::LiveScope;
use civic_store::Blob;
use futures::FutureExt;
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use serde::Serialize;
use serde_json::{Value, json};

use crate::iot_rules::{self, Compiled};
use lanes::{Lanes, Work};

/// IoT Core's limit on a message, and the embedded broker's.
const MAX_PAYLOAD: usize = 128 * 1024;
/// Messages from an external broker in the engine's hands at once. A QoS 1 message is
/// acknowledged only once handled, so the broker's in-flight window (mosquitto: 20) keeps
/// these few; the bound is for QoS 0 messages, which no window holds back.
const MAX_QUEUED: usize = 1024;
const MAX_DEVICES: u32 = 1000;
const MAX_LIVE: u32 = 1000;

#[derive(Clone, Debug, clap::Args)]
pub struct MqttOpts {
    /// Port of the embedded MQTT broker (0 picks a free one).
    #[arg(long, default_value_t = 1883)]
    pub mqtt_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub mqtt_host: IpAddr,
    /// Use this broker (e.g. `mqtt://127.0.0.1:1883`, or `mqtt://user:password@host:port`;
    /// mosquitto) instead of the embedded one. Its own configuration protects it.
    #[arg(long)]
    pub mqtt_url: Option<String>,
    /// Device logins on the embedded broker's device port. `off` (the seeds' open demo) lets
    /// any client connect, publish telemetry for any device and subscribe; it is refused with
    /// a non-loopback `--mqtt-host`. Command topics stay the platform's either way.
    #[arg(long, value_enum, default_value_t = MqttAuth::On)]
    pub mqtt_auth: MqttAuth,
    /// Devices connected at once to the embedded broker's device port; the next is refused
    /// with CONNACK 3 (server unavailable). Each may have up to 256 KiB of messages read ahead
    /// of the rule engine, so the default bounds that to 256 MiB; the broker itself takes this
    /// many and `--mqtt-max-live` more.
    #[arg(long, default_value_t = MAX_DEVICES, value_parser = clap::value_parser!(u32).range(1..))]
    pub mqtt_max_devices: u32,
    /// Browsers' live connections (`/mqtt`) at once; the next gets 503 with `Retry-After`.
    /// The broker remembers every client id it has seen, so browsers' ids come from this many
    /// places per app rather than one each.
    #[arg(long, default_value_t = MAX_LIVE, value_parser = clap::value_parser!(u32).range(1..))]
    pub mqtt_max_live: u32,
}

impl Default for MqttOpts {
    /// The command line's defaults, for the benches, which set only what they change.
    fn default() -> Self {
        Self {
            mqtt_port: 1883,
            mqtt_host: IpAddr::from([127, 0, 0, 1]),
            mqtt_url: None,
            mqtt_auth: MqttAuth::On,
            mqtt_max_devices: MAX_DEVICES,
            mqtt_max_live: MAX_LIVE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MqttAuth {
    On,
    Off,
}

impl MqttOpts {
    /// Refuses to serve devices without credentials beyond this machine.
    pub fn check(&self) -> Result<()> {
        if self.mqtt_url.is_none()
            && self.mqtt_auth == MqttAuth::Off
            && !self.mqtt_host.is_loopback()
        {
            anyhow::bail!(
                "--mqtt-auth off serves devices without credentials, so only on loopback: \
                 drop --mqtt-host {} or leave authentication on",
                self.mqtt_host
            );
        }
        Ok(())
    }
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
    /// Failed in the consumer for another reason, after retries (logged).
    pub failed: AtomicU64,
    /// Written to the rule's error action: the rejected, the failed and the malformed.
    pub kept: AtomicU64,
}

#[derive(Default, Serialize)]
pub struct Stats {
    /// Messages on a rule's topic whose payload was not JSON (logged, kept).
    pub malformed: AtomicU64,
    pub rules: HashMap<String, Counters>,
}

struct Consumer {
    compiled: Compiled,
    handler: IotHandler,
}

/// The rule engine: every template rule with its consumer, and where unstored messages go.
struct Engine {
    consumers: Vec<Consumer>,
    stats: Arc<Stats>,
    /// The error actions' bucket (the platform's blob store, as `!Ref Uploads` is on AWS).
    errors: Arc<dyn Blob>,
}

/// The running device side: the broker's URL and the counters.
pub struct Devices {
    pub url: String,
    pub stats: Arc<Stats>,
    /// Browsers' live subscriptions (`/mqtt`); `None` with an external broker.
    web: Option<Arc<web::Web>>,
}

impl Devices {
    /// Compiles the template's rules (refusing unsupported ones), starts the embedded broker
    /// behind its device port unless `--mqtt-url` names one, points the platform's publisher
    /// at the broker and starts the rule engine with handlers built on that platform.
    pub async fn start(
        opts: &MqttOpts,
        yaml: &str,
        platform: Platform,
        classes: &'static [&'static DeviceClass],
        live: &'static [&'static LiveScope],
    ) -> Result<(Platform, Self)> {
        opts.check()?;
        let rules = iot_rules::compile(&iot_rules::parse(yaml)?)?;
        // The broker's own listener takes this login (the front's and the platform's) only.
        let login = rumqttc::Login::new(
            "civic-local",
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        );
        // Unique per process: two programs on one external broker must not evict each other.
        let id = format!("civic-local-commands-{}", std::process::id());
        let (url, broker, devices) = match &opts.mqtt_url {
            Some(url) => (url.clone(), url.clone(), None),
            None => {
                let addr = SocketAddr::new(opts.mqtt_host, opts.mqtt_port);
                let devices = std::net::TcpListener::bind(addr).map_err(|e| {
                    crate::preflight::bind_error(&e, &addr.to_string(), "--mqtt-port")
                })?;
                devices.set_nonblocking(true)?;
                // Only the device port is public; the apps' commands go straight in.
                let internal = SocketAddr::new([127, 0, 0, 1].into(), 0);
                let broker = embedded_broker(internal, &login, opts)?;
                let url = format!("mqtt://{}", devices.local_addr()?);
                let internal = format!("mqtt://{}:{}@{broker}", login.username, login.password);
                (url, internal, Some((devices, broker)))
            }
        };
        let publisher =
            civic_iot::mqtt::MqttPublisher::connect(&broker, &id).map_err(anyhow::Error::msg)?;
        let platform = platform.with_publisher(Arc::new(publisher));
        let engine = Arc::new(Engine::new(rules, &platform));
        let stats = engine.stats.clone();
        let mut web = None;
        match devices {
            Some((listener, broker)) => {
                web = Some(Arc::new(web::Web::new(
                    &platform,
                    live,
                    (broker, login.clone()),
                    opts.mqtt_max_live as usize,
                )));
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let auth = opts.mqtt_auth == MqttAuth::On;
                let gate = gate::Gate::new(&platform, classes, auth);
                let front = front::Front::new(broker, engine, gate, login, opts.mqtt_max_devices);
                tokio::spawn(front::serve(listener, Arc::new(front)));
                if auth {
                    tracing::info!(
                        "MQTT devices on {url}: each logs in as its thing name ({{app}}-{{id}}, \
                         also its client id) with the credential its app issued"
                    );
                } else {
                    tracing::warn!(
                        "MQTT devices on {url} WITHOUT authentication (--mqtt-auth off, loopback \
                         only): any local client may publish any device's telemetry"
                    );
                }
            }
            None => {
                subscribe(&url, engine).await?;
                tracing::info!("MQTT devices on {url}: the broker's own configuration protects it");
            }
        }
        Ok((platform, Self { url, stats, web }))
    }

    /// `GET /_local/iot`: the broker URL and the counters.
    pub fn router(&self) -> Router {
        let (url, stats) = (self.url.clone(), self.stats.clone());
        Router::new()
            .route(
                "/_local/iot",
                axum::routing::get(move || async move {
                    axum::Json(serde_json::json!({"broker": url, "stats": &*stats}))
                }),
            )
            .merge(web::router(self.web.clone()))
    }
}

/// rumqttd on `addr`, in threads of its own. Port 0 is resolved first, so the broker's address
/// is known.
fn embedded_broker(
    addr: SocketAddr,
    login: &rumqttc::Login,
    opts: &MqttOpts,
) -> Result<SocketAddr> {
    let addr = std::net::TcpListener::bind(addr)?.local_addr()?;
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 256,
        auth: Some(HashMap::from([(
            login.username.clone(),
            login.password.clone(),
        )])),
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
            // Past it rumqttd answers nothing at all: the front and /mqtt refuse first, and
            // the platform's own connections (its publisher) fit in what is left.
            max_connections: (opts.mqtt_max_devices + opts.mqtt_max_live) as usize + 16,
            max_outgoing_packet_count: 256,
            // Every subscription filter (a device's command topic, a browser's live filter)
            // keeps a log of what was published to it in memory, for subscribers that lag or
            // are offline, and rumqttd never drops a filter: 4 segments of 1 MiB, so at most
            // ~4 MiB a filter (thousands of commands) rather than 128 MiB.
            max_segment_size: 1024 * 1024,
            max_segment_count: 4,
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
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("the MQTT broker did not start listening on {addr}")
}

/// An external broker: subscribes to every rule's `FROM` and acknowledges each message once
/// the engine is done with it. Returns once subscribed, so nothing published after start-up
/// goes past the rules.
async fn subscribe(url: &str, engine: Arc<Engine>) -> Result<()> {
    let mut opts =
        civic_iot::mqtt::options(url, "civic-local-rules").map_err(anyhow::Error::msg)?;
    opts.set_manual_acks(true)
        .set_clean_session(false)
        .set_max_packet_size(2 * MAX_PAYLOAD, 2 * MAX_PAYLOAD);
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let mut filters: Vec<String> = engine
        .consumers
        .iter()
        .map(|c| c.compiled.rule.from.clone())
        .collect();
    filters.sort();
    filters.dedup();
    // Bounded, and the engine takes from it only while it holds fewer than MAX_QUEUED
    // messages: past that the event loop waits, stops reading the socket, and the broker
    // holds what is unsent (its own limits: in-flight window, queue per session).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Publish>(64);
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    let acks = client.clone();
    tokio::spawn(async move {
        let mut lanes = Lanes::default();
        loop {
            tokio::select! {
                msg = rx.recv(), if lanes.len() < MAX_QUEUED => {
                    let Some(msg) = msg else { break };
                    let work = engine.clone().handle(msg.topic.clone(), msg.payload.clone(), None);
                    lanes.push(Some(msg.topic.clone()), work, msg);
                }
                Some((msg, ok)) = lanes.next(), if !lanes.is_empty() => {
                    // Not acknowledged, the broker delivers it again when we reconnect.
                    if ok && let Err(e) = acks.ack(&msg).await {
                        tracing::warn!(error = %e, "acknowledging a message");
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(p).await;
                }
                // Or the session the broker kept from the last run.
                Ok(Event::Incoming(
                    Packet::SubAck(_)
                    | Packet::ConnAck(rumqttc::ConnAck {
                        session_present: true,
                        ..
                    }),
                )) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
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
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .ok()
        .and_then(Result::ok)
        .with_context(|| {
            format!("the MQTT broker at {url} did not take the rules' subscriptions within 10 s")
        })
}

impl Engine {
    /// Each rule with its consumer, built on `platform`: the one publishing to the broker, so
    /// a consumer's commands reach the devices.
    fn new(rules: Vec<Compiled>, platform: &Platform) -> Self {
        let stats = Arc::new(Stats {
            malformed: AtomicU64::new(0),
            rules: rules
                .iter()
                .map(|r| (r.id.clone(), Counters::default()))
                .collect(),
        });
        Self {
            consumers: rules
                .into_iter()
                .map(|compiled| Consumer {
                    handler: (compiled.function.handler)(platform),
                    compiled,
                })
                .collect(),
            stats,
            errors: platform.blob(),
        }
    }

    /// Whether a rule's `FROM` takes messages on `topic`.
    fn routes(&self, topic: &str) -> bool {
        self.consumers
            .iter()
            .any(|c| civic_iot::topic::matches(&c.compiled.rule.from, topic))
    }

    /// Every rule the message matches, as IoT Core would: evaluate, invoke, count. What a
    /// consumer did not store is kept at the rule's error action. `false` when something could
    /// be neither stored nor kept: the message must not be acknowledged.
    fn handle(self: Arc<Self>, topic: String, payload: Bytes, client_id: Option<String>) -> Work {
        async move {
            let ctx = civic_iot::Context {
                topic: &topic,
                client_id: client_id.as_deref(),
                timestamp_ms: chrono::Utc::now().timestamp_millis(),
            };
            let json = serde_json::from_slice::<Value>(&payload);
            let mut ok = true;
            for c in &self.consumers {
                let counters = &self.stats.rules[&c.compiled.id];
                let failure = match &json {
                    Err(_) if civic_iot::topic::matches(&c.compiled.rule.from, &topic) => {
                        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                        "the payload is not JSON".to_owned()
                    }
                    Err(_) => continue,
                    Ok(json) => {
                        let Some(output) = c.compiled.rule.apply(json, &ctx) else {
                            continue;
                        };
                        counters.matched.fetch_add(1, Ordering::Relaxed);
                        match invoke(c, output).await {
                            Ok(()) => {
                                counters.stored.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            Err(Unstored::Rejected(why)) => {
                                counters.rejected.fetch_add(1, Ordering::Relaxed);
                                format!("rejected: {why}")
                            }
                            Err(Unstored::Failed(why)) => {
                                counters.failed.fetch_add(1, Ordering::Relaxed);
                                format!("failed: {why}")
                            }
                        }
                    }
                };
                ok &= self.keep(c, &ctx, &payload, failure).await;
            }
            ok
        }
        .boxed()
    }

    /// Writes what `c`'s consumer did not store to the rule's error action, in IoT Core's
    /// error-record shape; `false` if that failed too.
    async fn keep(
        &self,
        c: &Consumer,
        ctx: &civic_iot::Context<'_>,
        payload: &[u8],
        failure: String,
    ) -> bool {
        let (rule, function, topic) = (&c.compiled.id, c.compiled.function.name, ctx.topic);
        tracing::warn!(
            rule,
            function,
            topic,
            failure,
            "message not stored; keeping it"
        );
        let record = json!({
            "ruleName": rule,
            "topic": topic,
            "clientId": ctx.client_id,
            "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(payload),
            "failures": [{"failedAction": "LambdaAction", "failedResource": function,
                          "errorMessage": failure}],
        });
        let key = c.compiled.error_key(ctx);
        let body = Bytes::from(record.to_string());
        match self.errors.put(&key, body, "application/json").await {
            Ok(()) => {
                self.stats.rules[rule].kept.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::error!(rule, key, error = %e, "the error action failed");
                false
            }
        }
    }
}

enum Unstored {
    /// The message's own fault (a 4xx): malformed, wrong types, unknown device.
    Rejected(String),
    Failed(String),
}

/// Runs the consumer as Lambda would: failures other than the message's own are retried twice,
/// and a panic is a failure, not the end of the engine.
async fn invoke(c: &Consumer, output: Value) -> Result<(), Unstored> {
    let (rule, function) = (&c.compiled.id, c.compiled.function.name);
    let mut attempt = 0;
    loop {
        let run = std::panic::AssertUnwindSafe((c.handler)(output.clone()));
        match run.catch_unwind().await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.status().is_client_error() => {
                return Err(Unstored::Rejected(e.to_string()));
            }
            Ok(Err(e)) if attempt < 2 => {
                attempt += 1;
                tracing::warn!(rule, function, error = %e, attempt, "consumer failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Ok(Err(e)) => return Err(Unstored::Failed(e.to_string())),
            Err(_) => return Err(Unstored::Failed("the consumer panicked".to_owned())),
        }
    }
}
