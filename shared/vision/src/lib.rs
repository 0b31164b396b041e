//! Vision for Civic: untrusted image bytes decoded within limits, a person detector behind a
//! small trait (NanoDet and CenterNet on ONNX Runtime), and sliced inference.

pub mod counter;
pub mod decode;
pub mod detector;
pub mod fixtures;
pub mod geometry;
pub mod line;
pub mod runtime;
pub mod sliced;
pub mod track;
pub mod video;

pub use counter::{Count, Counter, count};
pub use decode::{ImageError, ImageLimits, Info};
pub use detector::{CenterNet, Detector, NanoDet};
pub use geometry::{BBox, Detection};
pub use sliced::Slicing;

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The runtime or a model could not be loaded or run: the service's fault, not the caller's.
    #[error("person detector: {0}")]
    Runtime(String),
}

impl From<VisionError> for civic_core::Error {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::Image(e) => e.into(),
            VisionError::Runtime(msg) => civic_core::Error::Unavailable(msg),
        }
    }
}
