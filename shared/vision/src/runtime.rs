//! ONNX Runtime, loaded once per process from a shared library: the PyPI `onnxruntime` wheel's
//! `libonnxruntime.so` (on Lambda, a layer's `/opt/lib`). No binaries are fetched at build time.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::VisionError;

/// The detector's settings (this crate's one config struct): where the library and the models
/// are, and the detection thresholds.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `ORT_DYLIB_PATH`; else the repo's `.venv` wheel, found by [`find_dylib`].
    pub dylib: PathBuf,
    /// `CIVIC_MODEL_DIR`; else the repo's `models/`.
    pub models: PathBuf,
    /// The primary detector's score threshold (`CIVIC_PERSON_THRESHOLD`, default 0.5: the
    /// lowest mean error on the labelled set, tests/labels.csv).
    pub person_threshold: f32,
    /// The second opinion's threshold (`CIVIC_SECOND_THRESHOLD`, default 0.4).
    pub second_threshold: f32,
}

impl Paths {
    pub fn from_env() -> Result<Self, VisionError> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dylib = match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) => PathBuf::from(p),
            None => find_dylib(&repo.join(".venv")).ok_or_else(|| {
                VisionError::Runtime(
                    "libonnxruntime.so not found: set ORT_DYLIB_PATH, or run ./scripts/test once \
                     to install the onnxruntime wheel into .venv"
                        .into(),
                )
            })?,
        };
        let mut env = civic_core::config::Env::new();
        let config = Self {
            dylib,
            models: env
                .text("CIVIC_MODEL_DIR")
                .map_or_else(|| repo.join("models"), PathBuf::from),
            person_threshold: env.get("CIVIC_PERSON_THRESHOLD", 0.5),
            second_threshold: env.get("CIVIC_SECOND_THRESHOLD", 0.4),
        };
        env.finish(config)
            .map_err(|e| VisionError::Runtime(e.to_string()))
    }
}

/// `<venv>/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
pub fn find_dylib(venv: &Path) -> Option<PathBuf> {
    for py in std::fs::read_dir(venv.join("lib")).ok()?.flatten() {
        let capi = py.path().join("site-packages/onnxruntime/capi");
        for f in std::fs::read_dir(&capi).into_iter().flatten().flatten() {
            let name = f.file_name();
            if name.to_string_lossy().starts_with("libonnxruntime.so") {
                return Some(f.path());
            }
        }
    }
    None
}

/// Loads the library and builds the process's one environment, the first time; later calls
/// return the first outcome.
pub fn environment(dylib: &Path) -> Result<&'static ort::environment::Environment, VisionError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(dylib)
            .map_err(|e| format!("loading {}: {e}", dylib.display()))?
            .with_name("civic")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| VisionError::Runtime(e.clone()))
}

/// A session on `threads` intra-op threads (the Lambda's vCPUs; 2 on this machine).
pub fn session(
    env: &ort::environment::Environment,
    model: &Path,
    threads: usize,
) -> Result<ort::session::Session, VisionError> {
    let err = |e: String| VisionError::Runtime(format!("{}: {e}", model.display()));
    ort::session::Session::builder(env)
        .map_err(|e| err(e.to_string()))?
        .with_intra_threads(threads)
        .map_err(|e| err(e.to_string()))?
        .commit_from_file(model)
        .map_err(|e| err(e.to_string()))
}
