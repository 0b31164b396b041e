use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "civic-local",
    about = "Run the whole Civic platform on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every HttpApi route of template.yaml at http://HOST:PORT/{app}/... (refuses to
    /// start when the template and the linked routers disagree).
    Serve(civic_local::ServeOpts),
    /// Simulate devices on the four MQTT streams against `serve`'s broker; prints the commands
    /// they receive (and answer).
    Simulate(civic_local::sim::SimOpts),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    civic_runtime::init_tracing(false);
    match Cli::parse().command {
        Command::Serve(opts) => civic_local::serve(opts).await,
        Command::Simulate(opts) => {
            let report = civic_local::sim::run(&opts).await?;
            println!(
                "sent {} messages, received {} commands",
                report.sent,
                report.commands.len()
            );
            Ok(())
        }
    }
}
