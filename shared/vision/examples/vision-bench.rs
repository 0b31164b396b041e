//! The person counter's benchmark: time per 1080p image, one pass against sliced, and the
//! counting error on the labelled set, in one run.
//! `cargo run --profile local -p civic-vision --example vision-bench [-- image…]`

use std::time::{Duration, Instant};

use civic_vision::{Counter, Detector, fixtures, runtime, sliced};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counter = Counter::load(&runtime::Paths::from_env()?, threads)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        for path in args {
            let img = fixtures::open(path.as_ref());
            let people = sliced::detect(&counter.primary, &img, &counter.slicing)?;
            let scores: Vec<String> = people.iter().map(|d| format!("{:.2}", d.score)).collect();
            println!("{path}: {} people [{}]", people.len(), scores.join(" "));
        }
        return Ok(());
    }

    let (crowd, truth) = fixtures::crowd();
    let reps = 7;
    let (mut single, mut tiled) = (Vec::new(), Vec::new());
    let (mut n_single, mut n_tiled) = (0, 0);
    for _ in 0..reps {
        let t = Instant::now();
        n_single = counter.primary.detect(&crowd)?.len();
        single.push(t.elapsed());
        let t = Instant::now();
        n_tiled = sliced::detect(&counter.primary, &crowd, &counter.slicing)?.len();
        tiled.push(t.elapsed());
    }
    let (single, tiled) = (median(single), median(tiled));
    println!(
        "1080p crowd ({}x{}, {truth} people, {threads} threads, median of {reps}):",
        crowd.width(),
        crowd.height()
    );
    println!(
        "  one pass  {:>7.1} ms  {n_single} people",
        single.as_secs_f64() * 1e3
    );
    println!(
        "  sliced    {:>7.1} ms  {n_tiled} people  ({} tiles + full frame; {:.2}x the one-pass time)",
        tiled.as_secs_f64() * 1e3,
        counter.slicing.tiles(crowd.width(), crowd.height()).len(),
        tiled.as_secs_f64() / single.as_secs_f64()
    );

    // One bare 416×416 pass (no resize), to compare runtimes: see the README for tract-onnx.
    let square = image::imageops::resize(&crowd, 416, 416, image::imageops::FilterType::Triangle);
    let mut bare = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        counter.primary.detect(&square)?;
        bare.push(t.elapsed());
    }
    println!(
        "  one 416x416 NanoDet pass on ONNX Runtime: {:.1} ms",
        median(bare).as_secs_f64() * 1e3
    );

    let labelled = fixtures::labelled();
    let mut err = [0usize; 3];
    for (path, truth) in &labelled {
        let img = fixtures::open(path);
        let counts = [
            counter.primary.detect(&img)?.len(),
            sliced::detect(&counter.primary, &img, &counter.slicing)?.len(),
            counter.second.detect(&img)?.len(),
        ];
        for (e, n) in err.iter_mut().zip(counts) {
            *e += n.abs_diff(*truth);
        }
    }
    let mae = |e: usize| e as f64 / labelled.len() as f64;
    println!(
        "labelled set ({} images) mean absolute error: one pass {:.3}, sliced {:.3}, centernet {:.3}",
        labelled.len(),
        mae(err[0]),
        mae(err[1]),
        mae(err[2])
    );
    Ok(())
}
