//! Cold starts of every function of template.yaml, as Lambda runs them: each binary is started
//! under the test kit's Lambda Runtime API emulator with the environment the template declares
//! (env.json's values, moto for AWS), and init is timed from exec to its first
//! `GET /runtime/invocation/next`, over several starts (min and median: the machine is
//! shared). The first start then gets its sample event from `events/`, against moto; the
//! table shows how long that took and what it answered. Everything listens on 127.0.0.1.
//!
//! Needs moto (`CIVIC_MOTO_URL`); creates the bucket, tables and signing keys there as
//! `civic-local provision` does. Run it on a fresh moto: the samples register users.

use std::path::PathBuf;

use anyhow::{Context, Result};
use civic_local::bench::init::{self, Target};
use civic_local::provision;
use civic_store::Backend;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Where the function binaries are (`cargo build --release --bins -p <apps>`).
    #[arg(default_value = "target/release")]
    bins: PathBuf,
    /// Starts per function; the first also runs the sample event.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// The moto server standing in for DynamoDB, S3 and SSM.
    #[arg(long, env = "CIVIC_MOTO_URL")]
    moto: String,
    /// Only these binaries (comma-separated); default every function of the template.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The repository: template.yaml, env.json and events/.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// cargo-lambda's output (`{dir}/{binary}/bootstrap`): arm64 sizes when present.
    #[arg(long, default_value = "target/lambda")]
    lambda_dir: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    provision_moto(&args.moto).await?;
    let mut targets = init::targets(&args.repo, &args.moto)?;
    targets.retain(|t| args.only.is_empty() || args.only.contains(&t.binary));
    println!("{}", header(&args));
    println!(
        "| function | kind | size (MB) | init min (ms) | init median (ms) | first invocation (ms) | status |"
    );
    println!("|---|---|--:|--:|--:|--:|---|");
    let (mut slow, mut big) = (Vec::new(), Vec::new());
    for t in &targets {
        if !args.bins.join(&t.binary).exists() {
            println!("| {} | not built | | | | | |", t.binary);
            continue;
        }
        let (row, median, mb) = measure(&args, t).await?;
        println!("{row}");
        if t.http && median > 15.0 {
            slow.push(format!("{} ({median:.1} ms)", t.binary));
        }
        if t.http && mb > 6.0 {
            big.push(format!("{} ({mb:.1} MB)", t.binary));
        }
    }
    match slow.is_empty() {
        true => println!("\nEvery HTTP function's median init is within 15 ms."),
        false => println!("\nHTTP functions over 15 ms (median): {}", slow.join(", ")),
    }
    match big.is_empty() {
        true => println!("Every HTTP function's binary is 6 MB or less."),
        false => println!("HTTP functions over 6 MB: {}", big.join(", ")),
    }
    Ok(())
}

/// What the figures are of: the binaries' directory and the number of starts.
fn header(args: &Args) -> String {
    let dir = args.bins.display();
    format!("Cold starts of {dir}/*, {} starts each:\n", args.runs)
}

/// `t`'s row of the table, its median init in ms and its size in MB.
async fn measure(args: &Args, t: &Target) -> Result<(String, f64, f64)> {
    let bin = args.bins.join(&t.binary);
    let mut inits = Vec::new();
    let mut first = None;
    for run in 0..args.runs.max(1) {
        let event = if run == 0 { t.event.as_deref() } else { None };
        let start = init::cold_start(&bin, t, event).await?;
        inits.push(start.init);
        first = first.or(start.first);
    }
    let [min, median] = civic_local::bench::percentiles(inits, [0.0, 0.5]);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let (size, arch) = init::size(&args.lambda_dir, &bin, &t.binary);
    let (took, status) = match first {
        Some((took, status)) => (format!("{:.1}", ms(took)), status),
        None => ("–".to_owned(), "no sample event".to_owned()),
    };
    let kind = if t.http { "HTTP" } else { "event" };
    let mb = size as f64 / 1e6;
    let size = format!("{mb:.1} {arch}");
    let row = format!(
        "| {} | {kind} | {size} | {:.1} | {:.1} | {took} | {status} |",
        t.binary,
        ms(min),
        ms(median)
    );
    Ok((row, ms(median), mb))
}

/// The bucket, tables and signing keys the functions expect, on moto, as `provision` makes
/// them (env.json names the same ones).
async fn provision_moto(moto: &str) -> Result<()> {
    let sdk = civic_testkit::moto::aws_config_at(moto).await;
    let defaults = provision::ProvisionOpts::default();
    let backend = Backend::aws_with_config(&sdk, defaults.bucket.clone());
    provision::store(&backend).await.context("moto")?;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    provision::jwt_keys(&ssm, &defaults.jwt_keys_parameter).await?;
    Ok(())
}
