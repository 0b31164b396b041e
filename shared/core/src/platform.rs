//! What a function needs from its environment: the store backend, the token signing keys and
//! the limits. Built once at init (Lambda) or once per process (local).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use civic_iot::{Provision, Publisher};
use civic_store::{Backend, Blob, Table};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::config::{Env, FromEnv};
use crate::keys::{KeySet, MIN_SECRET};
use crate::layers::Limits;

#[derive(Clone)]
pub struct Platform {
    pub backend: Backend,
    pub limits: Limits,
    /// Empty in a Lambda function that neither signs nor verifies tokens.
    keys: Arc<KeySet>,
    /// Set in Lambda, where a function serves one app: `TABLE_NAME` from the template.
    table_name: Option<String>,
    /// Where commands to devices go: IoT Core in Lambda, the MQTT broker locally.
    publisher: Arc<OnceLock<Arc<dyn Publisher>>>,
    /// Device certificates from IoT Core, on AWS when the template names a device policy.
    provisioner: Arc<OnceLock<Option<Arc<dyn Provision>>>>,
    /// Set in Lambda. The IoT Core clients are made from it at first use, in the accessors
    /// alone, so that a function links the IoT SDKs only if it publishes or provisions
    /// (issue 20); the S3 client likewise ([`civic_store::Backend::blob`]).
    aws: Option<aws_config::SdkConfig>,
    /// Set by [`Platform::local`]: direct uploads go through civic-local ([`crate::uploads`]).
    local: bool,
    /// Requests in flight, one count for every router built on this platform
    /// ([`Limits::in_flight`]).
    in_flight: Arc<Semaphore>,
}

/// The key id of civic-local's one secret (the data dir's `jwt-secret`).
pub const LOCAL_KID: &str = "local";

impl Platform {
    /// One signing secret, current under [`LOCAL_KID`].
    pub fn new(backend: Backend, secret: Vec<u8>, limits: Limits) -> Result<Self, String> {
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "the JWT secret must be at least {MIN_SECRET} bytes"
            ));
        }
        Ok(Self::with_keys(
            backend,
            KeySet::single(LOCAL_KID, secret)?,
            limits,
        ))
    }

    pub fn with_keys(backend: Backend, keys: KeySet, limits: Limits) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(limits.in_flight)),
            backend,
            limits,
            keys: Arc::new(keys),
            table_name: None,
            publisher: Arc::default(),
            provisioner: Arc::default(),
            aws: None,
            local: false,
        }
    }

    /// Lambda: DynamoDB + S3 from the standard AWS environment and the rest from [`Config`];
    /// the signing keys from the SSM parameter it names, read once here. A function without
    /// one holds no keys: it can neither sign nor verify a token (its routes need none).
    pub async fn from_env() -> Result<Self, String> {
        let config = Config::read()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let keys = match &config.jwt_keys_parameter {
            Some(name) => KeySet::from_ssm(&aws_sdk_ssm::Client::new(&sdk), name).await?,
            None => KeySet::empty(),
        };
        let backend = Backend::aws_with_config(&sdk, config.bucket);
        let mut p = Self::with_keys(backend, keys, config.limits);
        p.table_name = config.table_name;
        p.aws = Some(sdk);
        Ok(p)
    }

    /// Local: the secret is generated once into the data dir and reused after.
    pub fn local(data_dir: &Path, backend: Backend, limits: Limits) -> Result<Self, String> {
        let path = data_dir.join("jwt-secret");
        let secret = match std::fs::read(&path) {
            Ok(s) => s,
            Err(_) => {
                let mut s = vec![0u8; 48];
                rand::rng().fill_bytes(&mut s);
                let s: Vec<u8> = s
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .into_bytes();
                std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
                write_private(&path, &s).map_err(|e| format!("writing {}: {e}", path.display()))?;
                s
            }
        };
        let mut p = Self::new(backend, secret, limits)?;
        p.local = true;
        Ok(p)
    }

    /// The count of requests in flight that every app router of this platform shares.
    pub fn in_flight(&self) -> Arc<Semaphore> {
        self.in_flight.clone()
    }

    /// Whether this is civic-local rather than Lambda.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// The app's table: `civic-{app}` unless the template named it.
    pub fn table(&self, app: &str) -> Arc<dyn Table> {
        self.backend.table(&self.table_name(app))
    }

    pub fn table_name(&self, app: &str) -> String {
        self.table_name
            .clone()
            .unwrap_or_else(|| format!("civic-{app}"))
    }

    /// In Lambda, IoT Core's data plane, made here at the first call.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        let make = || -> Arc<dyn Publisher> {
            match &self.aws {
                Some(_) => Arc::new(civic_iot::aws::IotData::new(
                    &civic_iot::aws::Config::from_env(),
                )),
                None => Arc::new(civic_iot::Unconnected),
            }
        };
        self.publisher.get_or_init(make).clone()
    }

    /// App `app`'s live updates, through the same publisher as commands.
    pub fn live(&self, app: &'static str) -> crate::live::Live {
        crate::live::Live::new(app, self.publisher())
    }

    pub fn with_publisher(mut self, publisher: Arc<dyn Publisher>) -> Self {
        self.publisher = Arc::new(OnceLock::from(publisher));
        self
    }

    /// In Lambda, IoT Core when the template names the app's `DEVICE_POLICY`; made at the
    /// first call.
    pub fn provisioner(&self) -> Option<Arc<dyn Provision>> {
        let make = || -> Option<Arc<dyn Provision>> {
            let policy = civic_iot::aws::Config::from_env().device_policy?;
            let iot = civic_iot::aws::IotProvisioner::new(self.aws.as_ref()?, policy);
            Some(Arc::new(iot))
        };
        self.provisioner.get_or_init(make).clone()
    }

    pub fn with_provisioner(mut self, provisioner: Arc<dyn Provision>) -> Self {
        self.provisioner = Arc::new(OnceLock::from(Some(provisioner)));
        self
    }

    pub fn blob(&self) -> Arc<dyn Blob> {
        self.backend.blob()
    }

    /// The token signing keys ([`KeySet`]), each scoped per app when used.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The platform's settings in Lambda, from the template's environment (civic-local takes its
/// own from its flags).
pub struct Config {
    /// The uploads bucket (`BUCKET_NAME`, default `civic`).
    pub bucket: String,
    /// The app's table (`TABLE_NAME`; unset: `civic-{app}`).
    pub table_name: Option<String>,
    /// The SSM parameter holding the token signing keys (`JWT_KEYS_PARAMETER`).
    pub jwt_keys_parameter: Option<String>,
    /// Body and rate limits (`BODY_LIMIT_BYTES`, `RATE_LIMIT`, `RATE_LIMIT_PER_HOUR`,
    /// `RATE_LIMIT_PER_MINUTE`).
    pub limits: Limits,
}

impl FromEnv for Config {
    fn from_env(env: &mut Env) -> Self {
        Self {
            bucket: env.text("BUCKET_NAME").unwrap_or_else(|| "civic".into()),
            table_name: env.text("TABLE_NAME"),
            jwt_keys_parameter: env.text("JWT_KEYS_PARAMETER"),
            limits: Limits::from_env(env),
        }
    }
}
