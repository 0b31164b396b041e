//! The real program as a child process: `civic-local serve` on 127.0.0.1 with free ports and
//! a fresh data dir, so a bench measures the product's own memory and store, not its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

/// `civic-local serve` as a child; dropping it kills it and removes its own data dir, so an
/// error or ctrl-c in the bench leaves nothing behind.
pub struct Server {
    child: Child,
    dir: DataDir,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The device port, `mqtt://127.0.0.1:PORT`.
    pub broker: String,
    /// WARN and ERROR lines the server logged so far (each also printed).
    pub problems: Arc<AtomicUsize>,
}

impl Server {
    /// Starts `bin serve` with `flags` beyond the ports and the data dir, rate limits off and
    /// Occupancy open (civic-local's defaults, whatever the environment says), and waits until
    /// it listens.
    pub async fn start(bin: &Path, flags: &[String]) -> Result<Self> {
        let own = tempfile::Builder::new().prefix("civic-child-").tempdir();
        Self::spawn(bin, DataDir::Own(own.context("a data dir")?), flags).await
    }

    /// [`Self::start`] on the data dir `dir`, which is kept: a bench that restarts the server
    /// at other settings on the same store.
    pub async fn start_in(bin: &Path, dir: &Path, flags: &[String]) -> Result<Self> {
        Self::spawn(bin, DataDir::Kept(dir.to_path_buf()), flags).await
    }

    async fn spawn(bin: &Path, dir: DataDir, flags: &[String]) -> Result<Self> {
        let child = Command::new(bin)
            .args(["serve", "--port", "0", "--mqtt-port", "0"])
            .args(["--rate-limit", "off", "--data-dir"])
            .arg(dir.path())
            .args(flags)
            .env_remove("OCCUPANCY_REQUIRE_AUTH")
            .env_remove("RATE_LIMIT_PER_HOUR")
            .env_remove("RATE_LIMIT_PER_MINUTE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // From here on, dropping `s` cleans up.
        let mut s = Self {
            child,
            dir,
            base: String::new(),
            broker: String::new(),
            problems: Arc::default(),
        };
        let stderr = s.child.stderr.take().context("stderr")?;
        tokio::spawn(echo_problems(stderr, s.problems.clone()));
        let mut out = BufReader::new(s.child.stdout.take().context("stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), out.next_line()).await??;
        let first = first.context("civic-local exited before listening (its stderr is above)")?;
        // Its stdout stays drained: a closed pipe would fail its next print.
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        s.base = first.rsplit(' ').next().unwrap_or_default().to_owned();
        let iot: Value = reqwest::get(format!("{}/_local/iot", s.base))
            .await?
            .json()
            .await?;
        let broker = iot["broker"].as_str().context("no broker at /_local/iot")?;
        s.broker = broker.to_owned();
        Ok(s)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A memory figure of the server (`VmRSS`, `VmHWM`) in MiB.
    pub fn memory_mb(&self, field: &str) -> f64 {
        let pid = self.pid().map(|p| p.to_string()).unwrap_or_default();
        super::status_mb(&pid, field)
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit, so that its
    /// store is closed cleanly: a kept store then reopens without redb's repair.
    pub async fn stop(mut self) -> Result<()> {
        let pid = self.pid().context("the server has exited")?;
        let term = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        ensure!(term.await?.success(), "kill -TERM {pid} failed");
        let exit = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        ensure!(exit.success(), "civic-local exited with {exit}");
        Ok(())
    }

    /// The embedded store's file, in MiB.
    pub fn store_mb(&self) -> f64 {
        let bytes = std::fs::metadata(self.dir.path().join("store.redb")).map_or(0, |m| m.len());
        bytes as f64 / (1 << 20) as f64
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // The files go once the process has gone, so it cannot write into a removed dir: an
        // own data dir is removed as `self.dir` drops, after this.
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Where the server keeps its store.
enum DataDir {
    /// The server's own ([`Server::start`]), removed when dropped.
    Own(TempDir),
    /// The caller's ([`Server::start_in`]), kept.
    Kept(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            Self::Own(dir) => dir.path(),
            Self::Kept(dir) => dir,
        }
    }
}

/// Prints and counts the server's warnings and errors; the rest of its log is routine.
async fn echo_problems(stderr: ChildStderr, count: Arc<AtomicUsize>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("WARN") || line.contains("ERROR") || line.starts_with("error") {
            count.fetch_add(1, Ordering::Relaxed);
            eprintln!("civic-local: {line}");
        }
    }
}
