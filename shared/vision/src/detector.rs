//! The person detector interface, and the ONNX models behind it.

use std::sync::Mutex;

use image::RgbImage;
use image::imageops::{self, FilterType};
use ort::session::Session;
use ort::value::TensorRef;

use crate::VisionError;
use crate::geometry::{BBox, Detection, suppress};

/// Finds people in an image.
pub trait Detector: Send + Sync {
    /// People in `img`, in its pixels, at or above the detector's score threshold.
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError>;
    /// The model's name, for logs and benchmarks.
    fn name(&self) -> &'static str;
}

/// Stretches `img` to `side`×`side` (the models were trained on stretched inputs).
fn square(img: &RgbImage, side: u32) -> RgbImage {
    imageops::resize(img, side, side, FilterType::Triangle)
}

/// One ONNX session; ONNX Runtime runs it on its own threads, callers take turns.
struct Model(Mutex<Session>);

impl Model {
    fn run<R>(
        &self,
        input: TensorRef<'_, f32>,
        read: impl FnOnce(&ort::session::SessionOutputs<'_>) -> Result<R, ort::Error>,
    ) -> Result<R, VisionError> {
        let mut session = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![input])
            .map_err(|e| VisionError::Runtime(e.to_string()))?;
        read(&outputs).map_err(|e| VisionError::Runtime(e.to_string()))
    }
}

/// NanoDet-416 (COCO): anchor-free, three strides; person is class 0.
pub struct NanoDet {
    model: Model,
    /// `(stride, scores output, boxes output)`, matched by shape at load.
    heads: Vec<(u32, String, String)>,
    pub threshold: f32,
    /// Overlap above which two of its own boxes are one person.
    pub nms_iou: f32,
}

impl NanoDet {
    const SIDE: u32 = 416;
    const BINS: usize = 11;
    const CLASSES: usize = 80;
    const MEAN: [f32; 3] = [103.53, 116.28, 123.675];
    const STD: [f32; 3] = [57.375, 57.12, 58.395];

    pub fn new(session: Session, threshold: f32) -> Result<Self, VisionError> {
        let mut heads = Vec::new();
        for stride in [8u32, 16, 32] {
            let anchors = i64::from((Self::SIDE / stride).pow(2));
            let find = |width: usize| {
                session
                    .outputs()
                    .iter()
                    .find(|o| {
                        o.dtype()
                            .tensor_shape()
                            .is_some_and(|s| s[..] == [1, anchors, width as i64])
                    })
                    .map(|o| o.name().to_owned())
                    .ok_or_else(|| {
                        VisionError::Runtime(format!("nanodet: no [1,{anchors},{width}] output"))
                    })
            };
            heads.push((stride, find(Self::CLASSES)?, find(4 * Self::BINS)?));
        }
        Ok(Self {
            model: Model(Mutex::new(session)),
            heads,
            threshold,
            nms_iou: 0.5,
        })
    }

    /// BGR, normalised per channel, NCHW.
    fn tensor(img: &RgbImage) -> Vec<f32> {
        let side = Self::SIDE as usize;
        let resized = square(img, Self::SIDE);
        let mut data = vec![0f32; 3 * side * side];
        for (i, px) in resized.pixels().enumerate() {
            for (c, rgb) in [2, 1, 0].into_iter().enumerate() {
                data[c * side * side + i] = (f32::from(px[rgb]) - Self::MEAN[c]) / Self::STD[c];
            }
        }
        data
    }

    /// A side's distance: the expectation of the softmax over its bins, in strides.
    fn distance(bins: &[f32]) -> f32 {
        let max = bins.iter().copied().fold(f32::MIN, f32::max);
        let (mut sum, mut weighted) = (0.0, 0.0);
        for (k, &b) in bins.iter().enumerate() {
            let e = (b - max).exp();
            sum += e;
            weighted += e * k as f32;
        }
        weighted / sum
    }
}

impl NanoDet {
    /// People scoring at least `min_score` (a tracker also wants the weak ones).
    pub fn detect_min(
        &self,
        img: &RgbImage,
        min_score: f32,
    ) -> Result<Vec<Detection>, VisionError> {
        let side = Self::SIDE as usize;
        let data = Self::tensor(img);
        let input = TensorRef::from_array_view(([1usize, 3, side, side], &data[..]))
            .map_err(|e| VisionError::Runtime(e.to_string()))?;
        let (sx, sy) = (
            img.width() as f32 / Self::SIDE as f32,
            img.height() as f32 / Self::SIDE as f32,
        );
        let dets = self.model.run(input, |out| {
            let mut dets = Vec::new();
            for (stride, scores, boxes) in &self.heads {
                let (_, scores) = out[scores.as_str()].try_extract_tensor::<f32>()?;
                let (_, boxes) = out[boxes.as_str()].try_extract_tensor::<f32>()?;
                let cols = Self::SIDE / stride;
                let s = *stride as f32;
                for (i, row) in scores.chunks_exact(Self::CLASSES).enumerate() {
                    let score = row[0];
                    if score < min_score {
                        continue;
                    }
                    let (cx, cy) = ((i as u32 % cols) as f32 * s, (i as u32 / cols) as f32 * s);
                    let sides = &boxes[i * 4 * Self::BINS..(i + 1) * 4 * Self::BINS];
                    let d: Vec<f32> = sides
                        .chunks_exact(Self::BINS)
                        .map(|b| Self::distance(b) * s)
                        .collect();
                    let bbox = BBox {
                        x1: ((cx - d[0]) * sx).max(0.0),
                        y1: ((cy - d[1]) * sy).max(0.0),
                        x2: ((cx + d[2]) * sx).min(img.width() as f32),
                        y2: ((cy + d[3]) * sy).min(img.height() as f32),
                    };
                    dets.push(Detection { bbox, score });
                }
            }
            Ok(dets)
        })?;
        Ok(suppress(dets, self.nms_iou))
    }
}

impl Detector for NanoDet {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        self.detect_min(img, self.threshold)
    }

    fn name(&self) -> &'static str {
        "nanodet"
    }
}

/// MobileNetV3-CenterNet-512 (COCO): up to 100 boxes, already decoded; person is class 0.
pub struct CenterNet {
    model: Model,
    output: String,
    pub threshold: f32,
}

impl CenterNet {
    const SIDE: u32 = 512;

    pub fn new(session: Session, threshold: f32) -> Result<Self, VisionError> {
        let output = session
            .outputs()
            .iter()
            .find(|o| o.name().ends_with("detections"))
            .map(|o| o.name().to_owned())
            .ok_or_else(|| VisionError::Runtime("centernet: no detections output".into()))?;
        Ok(Self {
            model: Model(Mutex::new(session)),
            output,
            threshold,
        })
    }
}

impl Detector for CenterNet {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        let side = Self::SIDE as usize;
        // RGB, 0–255, NHWC: the resized buffer as it is.
        let data: Vec<f32> = square(img, Self::SIDE)
            .into_raw()
            .into_iter()
            .map(f32::from)
            .collect();
        let input = TensorRef::from_array_view(([1usize, side, side, 3], &data[..]))
            .map_err(|e| VisionError::Runtime(e.to_string()))?;
        let (sx, sy) = (
            img.width() as f32 / Self::SIDE as f32,
            img.height() as f32 / Self::SIDE as f32,
        );
        self.model.run(input, |out| {
            let (_, rows) = out[self.output.as_str()].try_extract_tensor::<f32>()?;
            Ok(rows
                .chunks_exact(6)
                .filter(|r| r[5] == 0.0 && r[4] >= self.threshold)
                .map(|r| Detection {
                    bbox: BBox {
                        x1: (r[0] * sx).max(0.0),
                        y1: (r[1] * sy).max(0.0),
                        x2: (r[2] * sx).min(img.width() as f32),
                        y2: (r[3] * sy).min(img.height() as f32),
                    },
                    score: r[4],
                })
                .collect())
        })
    }

    fn name(&self) -> &'static str {
        "centernet"
    }
}
