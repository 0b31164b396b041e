//! The scale model of issue 18: each app's write path against a model of DynamoDB's limits,
//! before and after, at fleet sizes this machine cannot send for real. Prints the report's
//! markdown table (docs/scale.md holds a copy).

use civic_local::model::{self, HEADER, Run};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Simulated seconds of steady traffic per scenario.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// On-demand price, US dollars per million write request units.
    #[arg(long, default_value_t = 0.625)]
    price: f64,
    /// Ozone fleet sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 10_000, 100_000])]
    devices: Vec<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = Run {
        seconds: args.seconds,
        step: 0.005,
        price: args.price,
    };
    println!("{HEADER}");
    for &n in &args.devices {
        for row in model::ozone::rows(n, 60.0, run).await? {
            println!("{row}");
        }
    }
    Ok(())
}
