//! Sliced (SAHI-style) inference: the full frame finds the large people, overlapping tiles
//! find the small ones a single downscaled pass misses, and one merge counts each person once.

use image::RgbImage;
use image::imageops;

use crate::VisionError;
use crate::detector::Detector;
use crate::geometry::{BBox, Detection, suppress_by};

/// How an image is sliced and the results merged.
#[derive(Clone, Copy, Debug)]
pub struct Slicing {
    /// Tile side in source pixels: a third of the image's longer side, within these bounds.
    /// Small frames get tiles that zoom in; 1080p gets 640-pixel tiles, as the models' 416-pixel
    /// input is close to that.
    pub min_tile: u32,
    pub max_tile: u32,
    /// Fraction of a tile shared with its neighbour.
    pub overlap: f32,
    /// Also run the whole frame (large, near people).
    pub full_frame: bool,
    /// Merge: boxes overlapping more than this IoU are one person…
    pub iou: f32,
    /// …and so is a box cut by a tile's inner edge that lies mostly (intersection over the
    /// smaller box) inside another…
    pub ios: f32,
    /// …and any box lying almost wholly inside another (a head or torso of the same person).
    /// Higher than `ios`, so two whole people standing one behind the other keep their boxes.
    pub ios_whole: f32,
    /// A box this close (fraction of the tile) to a tile's inner edge counts as cut.
    pub edge: f32,
    /// Tiles are sliced only when the image is larger than one tile by this factor.
    pub min_scale: f32,
}

impl Default for Slicing {
    fn default() -> Self {
        Self {
            min_tile: 448,
            max_tile: 640,
            overlap: 0.2,
            full_frame: true,
            iou: 0.3,
            ios: 0.5,
            ios_whole: 0.8,
            edge: 0.02,
            min_scale: 1.25,
        }
    }
}

impl Slicing {
    /// The tile side for an image whose longer side is `larger`.
    pub fn tile(&self, larger: u32) -> u32 {
        (larger / 3).clamp(self.min_tile, self.max_tile.max(self.min_tile))
    }

    /// Tile origins along one axis of `len` pixels: evenly stepped, the last flush with the edge.
    fn starts(&self, len: u32, tile: u32) -> Vec<u32> {
        if len <= tile {
            return vec![0];
        }
        let step = ((tile as f32) * (1.0 - self.overlap)).max(1.0) as u32;
        let mut starts: Vec<u32> = (0..len - tile).step_by(step as usize).collect();
        starts.push(len - tile);
        starts
    }

    /// The tiles of a `width`×`height` image as `(x, y, w, h)`; none when a single pass suffices.
    pub fn tiles(&self, width: u32, height: u32) -> Vec<(u32, u32, u32, u32)> {
        let larger = width.max(height);
        let tile = self.tile(larger);
        if (larger as f32) < tile as f32 * self.min_scale {
            return Vec::new();
        }
        let (tw, th) = (tile.min(width), tile.min(height));
        let mut tiles = Vec::new();
        for y in self.starts(height, th) {
            for x in self.starts(width, tw) {
                tiles.push((x, y, tw, th));
            }
        }
        tiles
    }
}

/// A candidate, and whether a tile edge may have cut it.
struct Found {
    det: Detection,
    cut: bool,
}

/// People in `img`: the full frame and every tile, merged.
pub fn detect(
    detector: &dyn Detector,
    img: &RgbImage,
    slicing: &Slicing,
) -> Result<Vec<Detection>, VisionError> {
    let (width, height) = (img.width() as f32, img.height() as f32);
    let tiles = slicing.tiles(img.width(), img.height());
    let mut found = Vec::new();
    if slicing.full_frame || tiles.is_empty() {
        found.extend(
            detector
                .detect(img)?
                .into_iter()
                .map(|det| Found { det, cut: false }),
        );
    }
    for (x, y, w, h) in tiles {
        let tile = imageops::crop_imm(img, x, y, w, h).to_image();
        let (x0, y0) = (x as f32, y as f32);
        let (x1, y1) = (x0 + w as f32, y0 + h as f32);
        let margin = slicing.edge * w.max(h) as f32;
        found.extend(detector.detect(&tile)?.into_iter().map(|d| {
            let bbox = BBox {
                x1: d.bbox.x1 + x0,
                y1: d.bbox.y1 + y0,
                x2: d.bbox.x2 + x0,
                y2: d.bbox.y2 + y0,
            };
            // Touching an edge the image continues beyond.
            let cut = (x0 > 0.0 && bbox.x1 - x0 < margin)
                || (y0 > 0.0 && bbox.y1 - y0 < margin)
                || (x1 < width && x1 - bbox.x2 < margin)
                || (y1 < height && y1 - bbox.y2 < margin);
            Found {
                det: Detection { bbox, ..d },
                cut,
            }
        }));
    }
    let kept = suppress_by(
        found,
        |f| f.det.score,
        |a, b| {
            let ios = if a.cut || b.cut {
                slicing.ios
            } else {
                slicing.ios_whole
            };
            a.det.bbox.iou(&b.det.bbox) > slicing.iou || a.det.bbox.ios(&b.det.bbox) > ios
        },
    );
    Ok(kept.into_iter().map(|f| f.det).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_image_with_overlap_and_end_flush() {
        let s = Slicing::default();
        let tiles = s.tiles(1920, 1080);
        // Columns at 0, 512, 1024 and 1280 (flush); rows at 0 and 440 (flush).
        assert_eq!(tiles.len(), 8);
        assert_eq!(tiles[0], (0, 0, 640, 640));
        assert_eq!(tiles[3], (1280, 0, 640, 640));
        assert_eq!(tiles[7], (1280, 440, 640, 640));
        // A VGA-sized frame: 448-pixel tiles at 0 and 320 across, 0 and 128 down.
        assert_eq!(
            s.tiles(768, 576),
            vec![
                (0, 0, 448, 448),
                (320, 0, 448, 448),
                (0, 128, 448, 448),
                (320, 128, 448, 448)
            ]
        );
        // A small image is one pass.
        assert!(s.tiles(512, 424).is_empty());
        let s = Slicing {
            max_tile: 320,
            min_tile: 320,
            ..s
        };
        assert_eq!(s.tiles(768, 576).len(), 3 * 2);
    }
}
