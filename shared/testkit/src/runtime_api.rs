//! A Lambda Runtime API on 127.0.0.1, enough to run a function binary as Lambda runs it: the
//! binary long-polls `GET /2018-06-01/runtime/invocation/next` for events and posts each one's
//! response or error back (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>).
//! It records when the process first asked for an event, which is when its init ended (the
//! cold start Lambda bills), and when each answer came back.
//!
//! One emulator per process: [`spawn`] a function with [`RuntimeApi::addr`] as its
//! `AWS_LAMBDA_RUNTIME_API`, [`RuntimeApi::ready`], then [`RuntimeApi::invoke`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// The function's answer to one event.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`: the handler's output.
    Response(Bytes),
    /// `POST /invocation/{id}/error`: the error type (`Lambda-Runtime-Function-Error-Type`,
    /// else the body's `errorType`) and the body.
    Error { kind: String, body: Value },
}

impl Outcome {
    /// A response's JSON (`Null` for an error or a body that is not JSON).
    pub fn json(&self) -> Value {
        match self {
            Outcome::Response(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            Outcome::Error { .. } => Value::Null,
        }
    }
}

#[derive(Default)]
struct Shared {
    queue: VecDeque<(String, Bytes)>,
    /// When the process first asked for an event.
    first_next: Option<Instant>,
    /// Each answered event's outcome and when it came.
    answers: HashMap<String, (Outcome, Instant)>,
    /// `POST /runtime/init/error`'s body.
    init_error: Option<Value>,
}

#[derive(Clone, Default)]
struct Api {
    shared: Arc<Mutex<Shared>>,
    /// Wakes a waiting `/next` when an event is queued.
    queued: Arc<Notify>,
    /// Wakes the test when the process asks for an event or answers one.
    changed: Arc<Notify>,
    /// The ARN the events say they invoke.
    arn: Arc<str>,
}

/// The emulator; dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    api: Api,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Serves the API on a free port of 127.0.0.1 for function `name`.
    pub async fn start(name: &str) -> std::io::Result<Self> {
        let api = Api {
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}").into(),
            ..Api::default()
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, api, server })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until the process asks for its first event (its init is over) and returns when
    /// it did. `None` on timeout, or if it reported an init error first ([`Self::init_error`]).
    pub async fn ready(&self, timeout: Duration) -> Option<Instant> {
        self.wait(timeout, |s| match s.init_error {
            Some(_) => Some(None),
            None => s.first_next.map(Some),
        })
        .await
        .flatten()
    }

    /// The body of `POST /runtime/init/error`, if the process sent one.
    pub fn init_error(&self) -> Option<Value> {
        self.api.shared.lock().unwrap().init_error.clone()
    }

    /// Queues `event` for the next `/next`; returns its request id.
    pub fn send(&self, event: impl Into<Bytes>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut s = self.api.shared.lock().unwrap();
        s.queue.push_back((id.clone(), event.into()));
        drop(s);
        self.api.queued.notify_one();
        id
    }

    /// The outcome of event `id` and when it came, once the process answered (`None` on
    /// timeout).
    pub async fn answer(&self, id: &str, timeout: Duration) -> Option<(Outcome, Instant)> {
        self.wait(timeout, |s| s.answers.get(id).cloned()).await
    }

    /// Sends `event` and waits for its outcome: the outcome and how long it took.
    pub async fn invoke(
        &self,
        event: impl Into<Bytes>,
        timeout: Duration,
    ) -> Option<(Outcome, Duration)> {
        let sent = Instant::now();
        let id = self.send(event);
        let (outcome, at) = self.answer(&id, timeout).await?;
        Some((outcome, at.duration_since(sent)))
    }

    /// Polls `check` on the shared state whenever it changes, until it gives a value.
    async fn wait<T>(&self, timeout: Duration, check: impl Fn(&Shared) -> Option<T>) -> Option<T> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a change between the two is not missed.
            let changed = self.api.changed.notified();
            if let Some(v) = check(&self.api.shared.lock().unwrap()) {
                return Some(v);
            }
            tokio::time::timeout_at(until, changed).await.ok()?;
        }
    }
}

/// Starts function binary `bin` as Lambda would with this emulator: only `env` and Lambda's
/// own variables (AWS credentials, region and the function's name and size), no inherited
/// environment beyond `PATH`, stdout and stderr discarded unless `echo`.
pub fn spawn(
    bin: &Path,
    api: &RuntimeApi,
    name: &str,
    env: &[(String, String)],
    echo: bool,
) -> std::io::Result<Child> {
    let out = || {
        if echo {
            Stdio::inherit()
        } else {
            Stdio::null()
        }
    };
    Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(lambda_env(name, &api.addr()))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out())
        .stderr(out())
        .kill_on_drop(true)
        .spawn()
}

/// What Lambda sets in every function's environment (the ones lambda_runtime reads, and
/// static credentials for moto).
fn lambda_env(name: &str, api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("_HANDLER", "bootstrap"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl Api {
    fn update(&self, f: impl FnOnce(&mut Shared)) {
        f(&mut self.shared.lock().unwrap());
        self.changed.notify_waiters();
    }
}

/// Long-polls: the next queued event, with the headers lambda_runtime requires.
async fn next(State(api): State<Api>) -> Response {
    api.update(|s| {
        s.first_next.get_or_insert_with(Instant::now);
    });
    let (id, event) = loop {
        let queued = api.queued.notified();
        if let Some(e) = api.shared.lock().unwrap().queue.pop_front() {
            break e;
        }
        queued.await;
    };
    let deadline = SystemTime::now() + Duration::from_secs(10);
    let deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let trace = format!("Root=1-00000000-{};Sampled=0", &id.replace('-', "")[..24]);
    let headers = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", api.arn.to_string()),
        ("lambda-runtime-trace-id", trace),
        ("content-type", "application/json".to_owned()),
    ];
    (headers, event).into_response()
}

async fn response(State(api): State<Api>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let at = Instant::now();
    api.update(|s| {
        s.answers.insert(id, (Outcome::Response(body), at));
    });
    accepted()
}

async fn error(
    State(api): State<Api>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .or_else(|| body["errorType"].as_str())
        .unwrap_or("Unknown")
        .to_owned();
    api.update(|s| {
        s.answers.insert(id, (Outcome::Error { kind, body }, at));
    });
    accepted()
}

async fn init_error(State(api): State<Api>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.update(|s| s.init_error = Some(body));
    accepted()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}
