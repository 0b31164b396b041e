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
    /// limits are off unless `args` set them.
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
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let mut cmd = Command::new(bin);
        // An MQTT broker of its own on a free port, unless the test chose one.
        if !args.iter().any(|a| a.starts_with("--mqtt-")) {
            cmd.args(["serve", "--mqtt-port", "0"]);
        } else {
            cmd.arg("serve");
        }
        cmd.args(["--port", "0", "--data-dir"])
            .arg(data_dir)
            .arg("--template")
            .arg(&template)
            .env("RATE_LIMIT_PER_HOUR", "0")
            .env("RATE_LIMIT_PER_MINUTE", "0")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn civic-local");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("civic-local did not start within 60 s")
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

    /// SIGKILL, as in a crash: nothing gets to flush.
    pub async fn crash(mut self) -> Option<tempfile::TempDir> {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        self._tmp.take()
    }
}
