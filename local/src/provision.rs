//! `civic-local provision`: creates on DynamoDB, S3 and SSM (LocalStack, moto) what the Lambda
//! functions expect to find, then exits. `serve --backend aws` creates its bucket and tables
//! through the same [`store`], so `sam local` and civic-local see the same data.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::ParameterType;
use civic_core::KeySet;
use civic_core::platform::LOCAL_KID;
use civic_store::Backend;

use crate::registry;

/// `--bucket`'s default, env.json's BUCKET_NAME.
pub const BUCKET: &str = "civic-local";
/// `--jwt-keys-parameter`'s default, env.json's JWT_KEYS_PARAMETER.
pub const JWT_KEYS_PARAMETER: &str = "/civic/jwt-keys";

#[derive(Clone, Debug, clap::Args)]
pub struct ProvisionOpts {
    /// The uploads bucket (env.json's BUCKET_NAME).
    #[arg(long, default_value = BUCKET)]
    pub bucket: String,
    /// The SSM parameter of the token signing keys (env.json's JWT_KEYS_PARAMETER); created
    /// with one fresh key unless it exists, so a second run keeps every token valid.
    #[arg(long, default_value = JWT_KEYS_PARAMETER)]
    pub jwt_keys_parameter: String,
}

/// What `provision` without flags does.
impl Default for ProvisionOpts {
    fn default() -> Self {
        Self {
            bucket: BUCKET.to_owned(),
            jwt_keys_parameter: JWT_KEYS_PARAMETER.to_owned(),
        }
    }
}

/// The bucket and every app's table (`civic-{app}`, as env.json's TABLE_NAME names them).
pub async fn store(backend: &Backend) -> Result<Vec<String>> {
    backend
        .ensure_bucket()
        .await
        .context("creating the bucket")?;
    let apps: BTreeSet<&str> = registry::all().map(|f| f.app.name).collect();
    let mut tables = Vec::new();
    for app in apps {
        let name = format!("civic-{app}");
        backend
            .ensure_table(&name)
            .await
            .with_context(|| format!("creating the table {name}"))?;
        tables.push(name);
    }
    Ok(tables)
}

/// Runs the subcommand: the default AWS environment (`AWS_ENDPOINT_URL` for LocalStack).
pub async fn run(opts: &ProvisionOpts) -> Result<()> {
    let backend = Backend::aws(opts.bucket.clone()).await;
    let tables = store(&backend).await?;
    let sdk = aws_config::load_from_env().await;
    let created = jwt_keys(&aws_sdk_ssm::Client::new(&sdk), &opts.jwt_keys_parameter).await?;
    println!("bucket {}", opts.bucket);
    println!("tables {}", tables.join(" "));
    let keys = if created { "created" } else { "kept" };
    println!("jwt keys {} ({keys})", opts.jwt_keys_parameter);
    Ok(())
}

/// Writes a key set of one random key under `name` unless the parameter exists. Returns
/// whether it wrote one.
pub async fn jwt_keys(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<bool> {
    match ssm.get_parameter().name(name).send().await {
        Ok(_) => return Ok(false),
        Err(e) if e.code() == Some("ParameterNotFound") => {}
        Err(e) => {
            let e = aws_sdk_ssm::error::DisplayErrorContext(e);
            anyhow::bail!("reading the SSM parameter {name}: {e}");
        }
    }
    let set = KeySet::generate(LOCAL_KID).and_then(|k| k.to_json());
    ssm.put_parameter()
        .name(name)
        .value(set.map_err(anyhow::Error::msg)?)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .map_err(|e| {
            let e = aws_sdk_ssm::error::DisplayErrorContext(e);
            anyhow::anyhow!("writing the SSM parameter {name}: {e}")
        })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ProvisionOpts;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: ProvisionOpts,
    }

    #[test]
    fn the_default_is_what_no_flags_give() {
        let parsed = Cli::parse_from(["provision"]).opts;
        let default = ProvisionOpts::default();
        assert_eq!(parsed.bucket, "civic-local");
        assert_eq!(parsed.jwt_keys_parameter, "/civic/jwt-keys");
        assert_eq!(
            (default.bucket, default.jwt_keys_parameter),
            (parsed.bucket, parsed.jwt_keys_parameter)
        );
    }
}
