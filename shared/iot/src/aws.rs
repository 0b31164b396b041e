//! IoT Core from Lambda: commands through the data plane, and device provisioning.

use async_trait::async_trait;
use aws_sdk_iotdataplane::primitives::Blob;
use serde_json::Value;

use crate::{DeviceCredentials, ProvisionError, PublishError, Publisher};

/// This crate's settings on AWS, from the function's environment (read once, at init).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `IOT_DATA_ENDPOINT` (`https://…-ats.iot.…`); unset: looked up with
    /// `iot:DescribeEndpoint` at the first publish.
    pub data_endpoint: Option<String>,
    /// `DEVICE_POLICY`: the IoT policy device certificates get; unset: no provisioning.
    pub device_policy: Option<String>,
}

impl Config {
    /// Plain strings: nothing here can fail to parse.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            data_endpoint: var("IOT_DATA_ENDPOINT"),
            device_policy: var("DEVICE_POLICY"),
        }
    }
}

/// Publishes through IoT Core's data plane (`iot:Publish` on the topic). The client is made
/// at the first publish, so functions that never publish pay nothing at cold start.
#[derive(Default)]
pub struct IotData {
    client: tokio::sync::OnceCell<aws_sdk_iotdataplane::Client>,
    endpoint: Option<String>,
}

impl IotData {
    pub fn new(config: &Config) -> Self {
        Self {
            client: Default::default(),
            endpoint: config.data_endpoint.clone(),
        }
    }

    async fn client(&self) -> &aws_sdk_iotdataplane::Client {
        self.client
            .get_or_init(|| data_client(self.endpoint.clone()))
            .await
    }
}

/// The account's data endpoint is `endpoint` ([`Config::data_endpoint`]), or is looked up
/// with `iot:DescribeEndpoint`.
async fn data_client(endpoint: Option<String>) -> aws_sdk_iotdataplane::Client {
    let config = aws_config::load_from_env().await;
    let endpoint = match endpoint {
        Some(e) => Some(e),
        None => aws_sdk_iot::Client::new(&config)
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

/// Fleet provisioning from the app's own registration path: a thing per device, a fresh
/// certificate and key for it (the previous ones are detached and deactivated, as a new device
/// token retires the old), and the app's device policy, which scopes the certificate to the
/// device's own topics through the thing's attributes.
pub struct IotProvisioner {
    client: aws_sdk_iot::Client,
    /// The `AWS::IoT::Policy` of the app's devices.
    policy: String,
}

fn failed<E>(step: &'static str) -> impl FnOnce(E) -> ProvisionError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| {
        ProvisionError(format!(
            "{step}: {}",
            aws_sdk_iot::error::DisplayErrorContext(e)
        ))
    }
}

impl IotProvisioner {
    pub fn new(config: &aws_config::SdkConfig, policy: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_iot::Client::new(config),
            policy: policy.into(),
        }
    }

    /// On AWS, when the template names the app's `DEVICE_POLICY`.
    pub async fn from_config(config: &Config) -> Option<Self> {
        let policy = config.device_policy.clone()?;
        Some(Self::new(&aws_config::load_from_env().await, policy))
    }

    /// Creates the thing, or updates its attributes and retires its certificates.
    async fn put_thing(
        &self,
        thing: &str,
        attributes: &[(&str, &str)],
    ) -> Result<(), ProvisionError> {
        use aws_sdk_iot::types::AttributePayload;
        let attrs = attributes
            .iter()
            .fold(AttributePayload::builder().merge(true), |b, (k, v)| {
                b.attributes(*k, *v)
            })
            .build();
        let exists = self
            .client
            .describe_thing()
            .thing_name(thing)
            .send()
            .await
            .is_ok();
        if exists {
            let update = self.client.update_thing().thing_name(thing);
            update
                .attribute_payload(attrs)
                .send()
                .await
                .map_err(failed("update_thing"))?;
            self.retire_certificates(thing).await?;
        } else {
            let create = self.client.create_thing().thing_name(thing);
            create
                .attribute_payload(attrs)
                .send()
                .await
                .map_err(failed("create_thing"))?;
        }
        Ok(())
    }

    /// One live certificate per device: retire the ones it had.
    async fn retire_certificates(&self, thing: &str) -> Result<(), ProvisionError> {
        use aws_sdk_iot::types::CertificateStatus;
        let old = self
            .client
            .list_thing_principals()
            .thing_name(thing)
            .send()
            .await;
        for principal in old.map_err(failed("list_thing_principals"))?.principals() {
            self.client
                .detach_thing_principal()
                .thing_name(thing)
                .principal(principal)
                .send()
                .await
                .map_err(failed("detach_thing_principal"))?;
            if let Some(id) = principal.rsplit('/').next() {
                self.client
                    .update_certificate()
                    .certificate_id(id)
                    .new_status(CertificateStatus::Inactive)
                    .send()
                    .await
                    .map_err(failed("update_certificate"))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl crate::Provision for IotProvisioner {
    async fn provision(
        &self,
        thing: &str,
        attributes: &[(&str, &str)],
    ) -> Result<DeviceCredentials, ProvisionError> {
        self.put_thing(thing, attributes).await?;
        let cert = self
            .client
            .create_keys_and_certificate()
            .set_as_active(true)
            .send()
            .await
            .map_err(failed("create_keys_and_certificate"))?;
        let arn = cert.certificate_arn().unwrap_or_default().to_owned();
        self.client
            .attach_policy()
            .policy_name(&self.policy)
            .target(&arn)
            .send()
            .await
            .map_err(failed("attach_policy"))?;
        self.client
            .attach_thing_principal()
            .thing_name(thing)
            .principal(&arn)
            .send()
            .await
            .map_err(failed("attach_thing_principal"))?;
        let endpoint = self
            .client
            .describe_endpoint()
            .endpoint_type("iot:Data-ATS")
            .send()
            .await
            .map_err(failed("describe_endpoint"))?;
        Ok(DeviceCredentials {
            thing_name: thing.to_owned(),
            certificate_arn: arn,
            certificate_pem: cert.certificate_pem().unwrap_or_default().to_owned(),
            private_key: cert
                .key_pair()
                .and_then(|k| k.private_key())
                .unwrap_or_default()
                .to_owned(),
            endpoint: endpoint.endpoint_address().unwrap_or_default().to_owned(),
        })
    }
}
