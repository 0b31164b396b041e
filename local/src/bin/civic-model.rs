//! The scale model of issue 18: each app's write path against a model of DynamoDB's limits,
//! before and after, at fleet sizes this machine cannot send for real. Prints the report's
//! markdown table (docs/scale.md holds a copy).

use civic_local::model::{self, HEADER, Row, Run};
use clap::{Parser, ValueEnum};

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
    /// Occupancy fleet sizes (cameras, all in the deployment's one facility).
    #[arg(long, value_delimiter = ',', default_values_t = [10usize, 100, 1_000])]
    cameras: Vec<usize>,
    /// Streetlight: lights in one city.
    #[arg(long, default_value_t = 100_000)]
    lights: usize,
    /// Which apps' scenarios to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["ozone", "occupancy", "streetlight"])]
    apps: Vec<App>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum App {
    Ozone,
    Occupancy,
    Streetlight,
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
    let print = |rows: Vec<Row>| rows.iter().for_each(|row| println!("{row}"));
    if args.apps.contains(&App::Ozone) {
        for &n in &args.devices {
            print(model::ozone::rows(n, 60.0, run).await?);
        }
    }
    if args.apps.contains(&App::Occupancy) {
        for &n in &args.cameras {
            print(model::occupancy::rows(n, run).await?);
        }
    }
    if args.apps.contains(&App::Streetlight) {
        print(model::streetlight::rows(args.lights, run).await?);
    }
    Ok(())
}
