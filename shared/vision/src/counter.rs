//! People counting as the services use it: the sliced NanoDet count, and CenterNet's independent
//! second opinion, loaded once per process.

use std::sync::{Arc, OnceLock};

use image::RgbImage;

use crate::VisionError;
use crate::decode::{self, ImageLimits, Info};
use crate::detector::{CenterNet, Detector, NanoDet};
use crate::geometry::Detection;
use crate::runtime::{self, Paths};
use crate::sliced::{self, Slicing};

/// The result of counting one image.
#[derive(Clone, Debug)]
pub struct Count {
    pub info: Info,
    /// Sliced NanoDet: the count the services act on.
    pub people: Vec<Detection>,
    /// CenterNet on the full frame: an independent second opinion.
    pub second: usize,
}

pub struct Counter {
    pub primary: NanoDet,
    pub second: CenterNet,
    pub slicing: Slicing,
}

impl Counter {
    /// Both models from `paths`, on `threads` threads each.
    pub fn load(paths: &Paths, threads: usize) -> Result<Self, VisionError> {
        let env = runtime::environment(&paths.dylib)?;
        Ok(Self {
            primary: NanoDet::new(
                runtime::session(env, &paths.models.join("nanodet.onnx"), threads)?,
                paths.person_threshold,
            )?,
            second: CenterNet::new(
                runtime::session(env, &paths.models.join("centernet.onnx"), threads)?,
                paths.second_threshold,
            )?,
            slicing: Slicing::default(),
        })
    }

    /// The process's counter, loaded on first use from the environment ([`Paths::from_env`]).
    /// A failure is remembered: every later call reports it (a 503) rather than retrying.
    pub fn global() -> Result<Arc<Counter>, VisionError> {
        static COUNTER: OnceLock<Result<Arc<Counter>, String>> = OnceLock::new();
        COUNTER
            .get_or_init(|| {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let paths = Paths::from_env().map_err(|e| e.to_string())?;
                Counter::load(&paths, threads)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(VisionError::Runtime)
    }

    pub fn count_image(&self, info: Info, img: &RgbImage) -> Result<Count, VisionError> {
        Ok(Count {
            info,
            people: sliced::detect(&self.primary, img, &self.slicing)?,
            second: self.second.detect(img)?.len(),
        })
    }

    /// Decodes untrusted bytes within `limits`, then counts.
    pub fn count_bytes(&self, bytes: &[u8], limits: &ImageLimits) -> Result<Count, VisionError> {
        let (info, img) = decode::decode(bytes, limits)?;
        self.count_image(info, &img.to_rgb8())
    }
}

/// Counts people in uploaded bytes off the async runtime (inference takes a few hundred ms).
pub async fn count(
    bytes: impl AsRef<[u8]> + Send + 'static,
    limits: ImageLimits,
) -> Result<Count, VisionError> {
    tokio::task::spawn_blocking(move || Counter::global()?.count_bytes(bytes.as_ref(), &limits))
        .await
        .map_err(|e| VisionError::Runtime(e.to_string()))?
}
