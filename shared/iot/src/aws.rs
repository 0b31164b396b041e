//! IoT Core from Lambda: commands through the data plane, and device provisioning.

use async_trait::async_trait;
use aws_sdk_iotdataplane::primitives::Blob;
use serde_json::Value;

use crate::{PublishError, Publisher};

/// Publishes through IoT Core's data plane (`iot:Publish` on the topic). The client is made
/// at the first publish, so functions that never publish pay nothing at cold start.
#[derive(Default)]
pub struct IotData {
    client: tokio::sync::OnceCell<aws_sdk_iotdataplane::Client>,
}

impl IotData {
    pub fn from_env() -> Self {
        Self::default()
    }

    async fn client(&self) -> &aws_sdk_iotdataplane::Client {
        self.client.get_or_init(data_client).await
    }
}

/// The account's data endpoint is `IOT_DATA_ENDPOINT` (`https://…-ats.iot.…`), or is looked
/// up with `iot:DescribeEndpoint`.
async fn data_client() -> aws_sdk_iotdataplane::Client {
    let config = aws_config::load_from_env().await;
    let endpoint = match std::env::var("IOT_DATA_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => aws_sdk_iot::Client::new(&config)
            .describe_endpoint()
            .endpoint_type("iot:Data-ATS")
            .send()
            .await
            .map_err(|e| tracing::warn!(error = %e, "describing the IoT data endpoint"))
            .ok()
            .and_then(|r| r.endpoint_address)
            .map(|a| format!("https://{a}")),
    };
    let mut conf = aws_sdk_iotdataplane::config::Builder::from(&config);
    if let Some(e) = endpoint {
        conf = conf.endpoint_url(e);
    }
    aws_sdk_iotdataplane::Client::from_conf(conf.build())
}

#[async_trait]
impl Publisher for IotData {
    async fn publish(&self, topic: &str, payload: &Value) -> Result<(), PublishError> {
        self.client()
            .await
            .publish()
            .topic(topic)
            .qos(1)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PublishError::Transport {
                topic: topic.into(),
                msg: aws_sdk_iotdataplane::error::DisplayErrorContext(e).to_string(),
            })
    }
}
