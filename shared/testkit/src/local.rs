//! Starts the real `civic-local` binary on 127.0.0.1 with a fresh data dir, and stops it when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct LocalServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl LocalServer {
    /// `bin` is `env!("CARGO_BIN_EXE_civic-local")`; `args` are extra `serve` flags. Rate
    /// limits are off, as by default, unless `args` set them.
    pub async fn start(bin: &str, args: &[&str]) -> Self {
        Self::start_env(bin, args, &[]).await
    }

    /// [`start`](Self::start) with extra env vars.
    pub async fn start_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_in(bin, tmp.path(), args, env).await;
        s._tmp = Some(tmp);
        s
    }

    /// [`start`](Self::start) on the AWS backend, with moto (`CIVIC_MOTO_URL`) as DynamoDB and
    /// S3 and a fresh bucket. moto keeps tables between runs: tests must pick unique keys.
    pub async fn start_on_moto(bin: &str, args: &[&str]) -> Self {
        let moto = crate::moto::moto_url();
        let bucket = crate::moto::unique("civic");
        let args = [&["--backend", "aws", "--bucket", &bucket], args].concat();
        let env = [
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ];
        Self::start_env(bin, &args, &env).await
    }

    /// Starts on an existing data dir (to test what survives a restart) with extra env vars.
    pub async fn start_in(bin: &str, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin);
        // An MQTT broker of its own on a free port, unless the test chose one.
        if !args.iter().any(|a| a.starts_with("--mqtt-")) {
            cmd.args(["serve", "--mqtt-port", "0"]);
        } else {
            cmd.arg("serve");
        }
        cmd.args(["--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied());
        Self::spawn(cmd, data_dir, std::time::Duration::from_secs(60)).await
    }

    /// Runs `cmd` (civic-local `serve`, or a script that ends in it) and waits up to `wait`
    /// for the line that says where it listens.
    pub async fn spawn(mut cmd: Command, data_dir: &Path, wait: std::time::Duration) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn civic-local");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(wait, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("civic-local did not start within {wait:?}"))
            .expect("read stdout")
            .expect("civic-local exited before listening");
        let base = line.rsplit(' ').next().expect("address").to_owned();
        Self {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until every change-feed consumer (the template's stream functions) has applied
    /// what was committed before this call: `/_local/health` names, per consumer, when it last
    /// found its feed drained. Reads of data those consumers keep (fleet-wide rollups) lag
    /// writes by design; a test settles before it reads them.
    pub async fn settled(&self) {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let health: serde_json::Value = reqwest::get(self.url("/_local/health"))
                .await
                .and_then(|r| r.error_for_status())
                .expect("GET /_local/health")
                .json()
                .await
                .expect("health is JSON");
            let streams = health["streams"]
                .as_object()
                .expect("health names its streams");
            if streams.values().all(|at| at.as_u64().unwrap_or(0) > since) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the stream consumers did not catch up within 30 s: {streams:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, as ctrl-c or a service manager stops it; the exit status once it has stopped.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(killed.expect("kill").success());
        tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait())
            .await
            .expect("civic-local did not stop within 30 s of SIGTERM")
            .expect("wait")
    }

    /// SIGKILL, as in a crash: nothing gets to flush.
    pub async fn crash(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        self._tmp.take()
    }
}
