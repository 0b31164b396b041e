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
    /// Serve every HttpApi route of template.yaml at http://HOST:PORT/{app}/...
    Serve(civic_local::ServeOpts),
    /// Check that template.yaml and the linked routers agree; exit 1 if not.
    Check {
        #[arg(long, default_value = "template.yaml")]
        template: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    civic_runtime::init_tracing(false);
    match Cli::parse().command {
        Command::Serve(opts) => civic_local::serve(opts).await,
        Command::Check { template } => {
            let defs = civic_local::template::parse(&std::fs::read_to_string(&template)?)?;
            let dir = tempfile_dir()?;
            let opts = civic_local::ServeOpts {
                data_dir: dir.clone(),
                ..default_opts()
            };
            let problems = civic_local::check(&defs, &opts.platform().await?);
            let _ = std::fs::remove_dir_all(&dir);
            if problems.is_empty() {
                println!("template.yaml and the routers agree");
                Ok(())
            } else {
                anyhow::bail!("{}", problems.join("\n"))
            }
        }
    }
}

fn default_opts() -> civic_local::ServeOpts {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        opts: civic_local::ServeOpts,
    }
    Wrap::parse_from(["civic-local"]).opts
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("civic-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
