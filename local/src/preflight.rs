//! Start-up checks. The first reader of a start-up error is a newcomer who typed the README's
//! run command, so each failure is one line that names the problem and then the fix.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use civic_vision::runtime::{self, Paths};
use tokio::net::TcpListener;

/// The template civic-local was built with, so that it runs from any folder; `--template`
/// overrides it.
pub const TEMPLATE: &str = include_str!("../../template.yaml");

/// The built-in template, or the one `--template` names.
pub fn template(path: Option<&Path>) -> Result<String> {
    let Some(path) = path else {
        return Ok(TEMPLATE.to_owned());
    };
    std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "cannot read the template {}: {e}; fix the --template path, or leave --template out \
             to use the template built into civic-local",
            path.display()
        )
    })
}

/// Binds the HTTP port. A busy port is the usual first-day failure (a second `serve`).
pub async fn listen(host: std::net::IpAddr, port: u16, flag: &str) -> Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .map_err(|e| bind_error(&e, &format!("{host}:{port}"), flag))
}

/// One line for a port that cannot be bound, naming the flag that moves it.
pub fn bind_error(e: &std::io::Error, addr: &str, flag: &str) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        anyhow!(
            "{addr} is already in use (another civic-local?); stop that program, or pick \
             another port with {flag} (0 picks a free one)"
        )
    } else {
        anyhow!("cannot listen on {addr}: {e}; pick another address or port with {flag}")
    }
}

/// The data dir must be a folder this user can write: the store, blobs and JWT secret live
/// there. Checked by writing, since permissions alone do not tell (read-only mounts, ACLs).
pub fn data_dir(dir: &Path) -> Result<()> {
    let fail = |e: std::io::Error| {
        anyhow!(
            "cannot use the data dir {}: {e}; choose a folder you can write with --data-dir",
            dir.display()
        )
    };
    create_private(dir).map_err(fail)?;
    let probe = dir.join(".civic-write-check");
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

/// Creates `dir` (and missing parents) readable by this user alone: it holds the JWT signing
/// secret and every app's data. An existing folder keeps the mode its owner gave it.
fn create_private(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The store could not be opened although the folder is writable: most often another
/// civic-local holds it (redb locks its file).
pub fn store_error(dir: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "cannot open the store in {}: {e}; if another civic-local uses this data dir, stop it \
         or choose another with --data-dir",
        dir.display()
    )
}

/// Where the person detector's runtime and models were found: shown on the landing page.
#[derive(Clone, Debug)]
pub struct Detector {
    pub runtime: PathBuf,
    pub models: PathBuf,
}

/// Loads ONNX Runtime now, rather than at the first upload, and checks the models are there:
/// a missing runtime would otherwise surface as a 503 on the first people count.
pub fn detector() -> Result<Detector> {
    let paths = Paths::from_env().map_err(|_| {
        anyhow!(
            "ONNX Runtime (libonnxruntime.so), which the person detector needs, was not found; \
             run ./scripts/serve, which installs it into .venv, or set ORT_DYLIB_PATH to the \
             onnxruntime wheel's libonnxruntime.so"
        )
    })?;
    runtime::environment(&paths.dylib).map_err(|e| {
        anyhow!(
            "cannot load ONNX Runtime for the person detector ({e}); set ORT_DYLIB_PATH to the \
             libonnxruntime.so of the onnxruntime 1.31 wheel (./scripts/serve installs it)"
        )
    })?;
    for model in ["nanodet.onnx", "centernet.onnx"] {
        if !paths.models.join(model).is_file() {
            return Err(anyhow!(
                "the person detector's model {model} is not in {}; set CIVIC_MODEL_DIR to the \
                 repository's models/ folder",
                paths.models.display()
            ));
        }
    }
    // Shown on the landing page: `/repo/models`, not the build's `shared/vision/../../models`.
    let shown = |p: PathBuf| p.canonicalize().unwrap_or(p);
    Ok(Detector {
        runtime: shown(paths.dylib),
        models: shown(paths.models),
    })
}

/// The template and the linked routers disagree: the binary is older or newer than the
/// template it was given.
/// Every app's settings from the environment ([`civic_core::config`]): a bad value is a
/// one-line error naming the variable, before anything listens.
pub fn config() -> Result<()> {
    let mut bad: Vec<String> = Vec::new();
    for functions in crate::registry::APPS {
        let Some(Err(e)) = functions.first().map(|f| (f.app.config)()) else {
            continue;
        };
        // The shared crates' settings are every app's: name each bad variable once.
        bad.extend(
            e.0.into_iter()
                .filter(|v| !bad.contains(v))
                .collect::<Vec<_>>(),
        );
    }
    match bad.is_empty() {
        true => Ok(()),
        false => Err(anyhow!("{}", civic_core::config::ConfigError(bad))),
    }
}

pub fn disagreement(problems: &[String]) -> anyhow::Error {
    anyhow!(
        "the template and the routers linked into civic-local disagree: {}; rebuild civic-local \
         from the same checkout as the template (./scripts/serve does), or leave --template out",
        problems.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_template_names_the_flag() {
        let e = template(Some(Path::new("/nonexistent/t.yaml"))).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("/nonexistent/t.yaml") && msg.contains("leave --template out"));
        assert!(!msg.contains('\n'), "{msg}");
        assert!(template(None).unwrap().contains("AWS::Serverless"));
    }

    #[tokio::test]
    async fn a_busy_port_names_the_flag() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let e = listen([127, 0, 0, 1].into(), port, "--port")
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("already in use") && msg.contains("--port"),
            "{msg}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/.civic");
        data_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    #[test]
    fn an_unwritable_data_dir_names_the_flag() {
        let e = data_dir(Path::new("/proc/civic")).unwrap_err();
        assert!(e.to_string().contains("--data-dir"), "{e}");
    }
}
