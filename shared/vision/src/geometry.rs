//! Boxes and the merging rules that sliced inference needs.

/// An axis-aligned box in image pixels, `x1 < x2`, `y1 < y2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    pub fn intersection(&self, o: &BBox) -> f32 {
        let w = self.x2.min(o.x2) - self.x1.max(o.x1);
        let h = self.y2.min(o.y2) - self.y1.max(o.y1);
        w.max(0.0) * h.max(0.0)
    }

    pub fn iou(&self, o: &BBox) -> f32 {
        let i = self.intersection(o);
        let u = self.area() + o.area() - i;
        if u > 0.0 { i / u } else { 0.0 }
    }

    /// Intersection over the smaller box: 1.0 when one box lies inside the other, as a tile's
    /// half-person does inside the full frame's whole person.
    pub fn ios(&self, o: &BBox) -> f32 {
        let smaller = self.area().min(o.area());
        if smaller > 0.0 {
            self.intersection(o) / smaller
        } else {
            0.0
        }
    }

    /// The anchor a line-crossing counter follows: where the feet are.
    pub fn bottom_centre(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, self.y2)
    }
}

/// A person found in an image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

/// Greedy non-maximum suppression, best score first: a candidate is dropped when
/// `same(kept, candidate)` holds for any box already kept.
pub fn suppress_by<T>(
    mut found: Vec<T>,
    score: impl Fn(&T) -> f32,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    found.sort_by(|a, b| score(b).total_cmp(&score(a)));
    let mut kept: Vec<T> = Vec::with_capacity(found.len());
    for f in found {
        if !kept.iter().any(|k| same(k, &f)) {
            kept.push(f);
        }
    }
    kept
}

/// Plain NMS: boxes overlapping a better one by more than `iou` go.
pub fn suppress(dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    suppress_by(dets, |d| d.score, |a, b| a.bbox.iou(&b.bbox) > iou)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox { x1, y1, x2, y2 }
    }

    fn det(bbox: BBox, score: f32) -> Detection {
        Detection { bbox, score }
    }

    #[test]
    fn overlap_measures() {
        let a = b(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&b(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = b(0.0, 0.0, 10.0, 5.0);
        assert_eq!(a.iou(&half), 0.5);
        assert_eq!(a.ios(&half), 1.0);
        assert_eq!(a.bottom_centre(), (5.0, 10.0));
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_boxes() {
        let whole = det(b(0.0, 0.0, 10.0, 40.0), 0.9);
        let dup = det(b(1.0, 0.0, 11.0, 40.0), 0.8);
        let half = det(b(0.0, 0.0, 10.0, 10.0), 0.7);
        let other = det(b(30.0, 0.0, 40.0, 40.0), 0.6);
        let kept = suppress(vec![half, other, dup, whole], 0.3);
        // The half has little IoU with the whole: plain NMS keeps it (slicing decides).
        assert_eq!(kept, vec![whole, half, other]);
    }
}
