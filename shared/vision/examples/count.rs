//! Counts people in image files: `cargo run --release -p civic-vision --example count -- a.jpg …`

use std::time::Instant;

use civic_vision::{CenterNet, Detector, NanoDet, Slicing, runtime, sliced};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths = runtime::Paths::from_env()?;
    let env = runtime::environment(&paths.dylib)?;
    let mut nano = NanoDet::new(
        runtime::session(env, &paths.models.join("nanodet.onnx"), 2)?,
        0.4,
    )?;
    let centre = CenterNet::new(
        runtime::session(env, &paths.models.join("centernet.onnx"), 2)?,
        0.4,
    )?;
    let mut slicing = Slicing::default();
    if let Ok(t) = std::env::var("TILE") {
        slicing.min_tile = t.parse()?;
        slicing.max_tile = slicing.min_tile;
    }
    if let Ok(t) = std::env::var("THRESHOLD") {
        nano.threshold = t.parse()?;
    }
    let mut files: Vec<(String, Option<usize>)> = Vec::new();
    for arg in std::env::args().skip(1) {
        if let Some(dir) = arg.strip_prefix("--labels=") {
            let mut rdr = csv::Reader::from_path(format!("{dir}/labels.csv"))?;
            for row in rdr.records() {
                let row = row?;
                files.push((format!("{dir}/{}", &row[0]), Some(row[1].parse()?)));
            }
        } else {
            files.push((arg, None));
        }
    }
    let mut err = [0usize; 3];
    let mut labelled = 0;
    for (path, truth) in files {
        let img = image::open(&path)?.to_rgb8();
        let t = Instant::now();
        let one = nano.detect(&img)?.len();
        let t1 = t.elapsed();
        let t = Instant::now();
        let found = sliced::detect(&nano, &img, &slicing)?;
        let sl = found.len();
        let t2 = t.elapsed();
        let t = Instant::now();
        let c = centre.detect(&img)?.len();
        let t3 = t.elapsed();
        if let Ok(dir) = std::env::var("DRAW") {
            let mut out = img.clone();
            for d in &found {
                draw(&mut out, &d.bbox);
            }
            let name = std::path::Path::new(&path)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.save(format!("{dir}/{name}.png"))?;
        }
        if std::env::var("SCORES").is_ok() {
            let scores: Vec<String> = found.iter().map(|d| format!("{:.2}", d.score)).collect();
            println!("  scores {}", scores.join(" "));
        }
        if let Some(t) = truth {
            labelled += 1;
            for (e, n) in err.iter_mut().zip([one, sl, c]) {
                *e += n.abs_diff(t);
            }
        }
        println!(
            "truth {truth:?} {path}: {}x{} nanodet {one} ({t1:.0?}) sliced {sl} ({t2:.0?}) centernet {c} ({t3:.0?})",
            img.width(),
            img.height()
        );
    }
    if labelled > 0 {
        let mae = |e: usize| e as f64 / labelled as f64;
        println!(
            "MAE over {labelled}: one pass {:.3}, sliced {:.3}, centernet {:.3}",
            mae(err[0]),
            mae(err[1]),
            mae(err[2])
        );
    }
    Ok(())
}

/// A red rectangle, two pixels wide.
fn draw(img: &mut image::RgbImage, b: &civic_vision::BBox) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x1, y1, x2, y2) = (b.x1 as i64, b.y1 as i64, b.x2 as i64, b.y2 as i64);
    let mut put = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            img.put_pixel(x as u32, y as u32, image::Rgb([255, 0, 0]));
        }
    };
    for t in 0..2 {
        for x in x1..=x2 {
            put(x, y1 + t);
            put(x, y2 - t);
        }
        for y in y1..=y2 {
            put(x1 + t, y);
            put(x2 - t, y);
        }
    }
}
