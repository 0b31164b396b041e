use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "civic-local",
    version,
    about = "Run the whole Civic platform on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every HttpApi route of the template at http://HOST:PORT/{app}/..., with a landing
    /// page at / (refuses to start when the template and the linked routers disagree).
    Serve(civic_local::ServeOpts),
    /// Simulate devices on the four MQTT streams against `serve`'s broker; prints the commands
    /// they receive (and answer).
    Simulate(civic_local::sim::SimOpts),
    /// Create the bucket, every app's table and the token signing keys on DynamoDB, S3 and SSM
    /// (AWS_ENDPOINT_URL: LocalStack), as the Lambda functions of `sam local` expect them.
    Provision(civic_local::provision::ProvisionOpts),
    /// Write a template with one app's functions only, for `sam local start-api` (which
    /// serves every app on one port, where five routes belong to more than one app).
    SamTemplate(civic_local::samlocal::SamTemplateOpts),
}

/// Errors end the program with one line on stderr: what went wrong, then what to do.
fn main() -> ExitCode {
    match civic_local::runtime() {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    civic_runtime::init_tracing(false);
    let done = match Cli::parse().command {
        Command::Serve(opts) => civic_local::serve(opts).await,
        Command::Provision(opts) => civic_local::provision::run(&opts).await,
        Command::SamTemplate(opts) => civic_local::samlocal::run(&opts),
        Command::Simulate(opts) => civic_local::sim::run(&opts).await.map(|report| {
            let commands = report.commands.len();
            println!(
                "sent {} messages, received {commands} commands",
                report.sent
            );
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
