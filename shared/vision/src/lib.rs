//! Vision for Civic: untrusted image bytes decoded within limits, and (to come) a person
//! detector, sliced inference, tracking and line crossing.

pub mod decode;

pub use decode::{ImageError, ImageLimits, Info};
