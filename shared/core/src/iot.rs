//! Functions driven by IoT Core topic rules. The rule's `SELECT` output is the whole Lambda
//! payload; civic-local evaluates the same rule on its broker and calls the same handler.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use civic_iot::device::DeviceTopics;

use crate::function::JobFuture;
use crate::{App, Error, Platform, Result};

/// Handles one rule output. A client error (4xx) means the message is malformed or names an
/// unknown device: it is logged and counted, never retried. Any other error is retried.
pub type IotHandler = Arc<dyn Fn(Value) -> JobFuture + Send + Sync>;

pub struct IotFunction {
    /// The binary name, as `template.yaml` declares it.
    pub name: &'static str,
    pub app: App,
    /// Built once per process (Lambda init, civic-local start).
    pub handler: fn(&Platform) -> IotHandler,
}

/// The one handler skeleton: `f` gets a clone of the app's state and the message.
pub fn consumer<S, F, Fut>(state: S, f: F) -> IotHandler
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value>> + Send + 'static,
{
    Arc::new(move |msg| Box::pin(f(state.clone(), msg)))
}

/// An app's devices on MQTT: their topics and how a device's credential is checked.
/// civic-local's device port asks the app named by a CONNECT's user name (`{app}-{id}`, the
/// thing name) to verify the password; on AWS, IoT Core's certificates and the template's
/// device policies do the same job.
pub struct DeviceClass {
    pub topics: DeviceTopics,
    /// Built once per process.
    pub verifier: fn(&Platform) -> DeviceVerifier,
}

/// A device's login on civic-local's MQTT device port, shown once: at creation or rotation.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MqttLogin {
    /// Client id and user name alike: the device's thing name, `{app}-{id}`.
    pub username: String,
    /// The device credential; only its digest is stored.
    pub password: String,
}

/// `Ok(true)` when the secret is device `id`'s current credential; `Ok(false)` for a wrong
/// secret or an unknown device; an error when the store could not say.
pub type VerifyFuture = std::pin::Pin<Box<dyn Future<Output = Result<bool>> + Send>>;

/// Checks `(device id, secret)`.
pub type DeviceVerifier = Arc<dyn Fn(String, String) -> VerifyFuture + Send + Sync>;

/// The one verifier skeleton: `f` gets a clone of the app's state, the device id and the secret.
pub fn verifier<S, F, Fut>(state: S, f: F) -> DeviceVerifier
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, String, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool>> + Send + 'static,
{
    Arc::new(move |id, secret| Box::pin(f(state.clone(), id, secret)))
}

/// A message as `T`; wrong types or shapes are a 400 naming the problem.
pub fn message<T: DeserializeOwned>(msg: Value) -> Result<T> {
    serde_json::from_value(msg).map_err(|e| Error::bad_request(format!("Invalid message: {e}")))
}

/// A handler's result as its JSON report.
pub fn report<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))
}

/// A topic level the rule copied into the message (`topic(3) AS id`), parsed as an integer id.
pub fn int_id(msg: &Value, field: &str) -> Result<i64> {
    let id = match msg.get(field) {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    id.filter(|id| *id > 0)
        .ok_or_else(|| Error::bad_request(format!("{field} must be a positive integer")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::int_id;

    #[test]
    fn topic_ids_parse_from_text_or_numbers() {
        assert_eq!(int_id(&json!({"id": "12"}), "id").unwrap(), 12);
        assert_eq!(int_id(&json!({"id": 3}), "id").unwrap(), 3);
        for bad in [
            json!({"id": "x"}),
            json!({"id": "-1"}),
            json!({}),
            json!({"id": 1.5}),
        ] {
            assert!(int_id(&bad, "id").is_err(), "{bad}");
        }
    }
}
