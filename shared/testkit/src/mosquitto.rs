//! Debian's mosquitto on 127.0.0.1, the external broker civic-local can use (`--mqtt-url`):
//! `$MOSQUITTO`, else the copy `./scripts/fixtures` unpacks into `target/fixtures/mosquitto`,
//! else `mosquitto` on the PATH. It persists to a temporary dir and stops when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct Mosquitto {
    _child: Child,
    /// `mqtt://127.0.0.1:PORT`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub async fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fixtures/mosquitto");
        let unpacked = root.join("usr/sbin/mosquitto");
        let bin = std::env::var_os("MOSQUITTO")
            .map(PathBuf::from)
            .or_else(|| unpacked.exists().then(|| unpacked.clone()))
            .unwrap_or_else(|| "mosquitto".into());
        // The unpacked package's own libraries (libwrap, libdlt), whatever the architecture.
        let libs: Vec<String> = ["usr/lib", "lib"]
            .iter()
            .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
            .flatten()
            .filter_map(|e| {
                let path = e.ok()?.path();
                let name = path.file_name()?.to_str()?;
                name.ends_with("-linux-gnu")
                    .then(|| path.display().to_string())
            })
            .collect();

        let dir = tempfile::tempdir().expect("temp dir");
        // A free port, released for mosquitto (which has no "pick one" for TCP).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\n\
                 # Only takes effect when run as root: stay root rather than become `mosquitto`.\n\
                 user root\npersistence true\npersistence_location {}/\n",
                dir.path().display()
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .env("LD_LIBRARY_PATH", libs.join(":"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} could not start ({e}): run ./scripts/fixtures",
                    bin.display()
                )
            });
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    _child: child,
                    url: format!("mqtt://127.0.0.1:{port}"),
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mosquitto did not listen on port {port} within 5 s");
    }
}
