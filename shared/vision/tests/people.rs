//! The person counter on real photos (Debian's opencv-doc and darknet, scikit-image), hand
//! counted in `labels.csv`, and on a 1080p crowd that only tiling can count.

use civic_vision::{Counter, Detector, ImageError, ImageLimits, VisionError, fixtures, sliced};

#[test]
fn the_sliced_count_is_within_half_a_person_on_the_labelled_set() {
    let counter = Counter::global().expect("the person counter loads");
    let labelled = fixtures::labelled();
    assert!(labelled.len() >= 12, "a labelled set, not a sample");
    let mut total_error = 0;
    for (path, truth) in &labelled {
        let bytes = std::fs::read(path).unwrap();
        let count = counter.count_bytes(&bytes, &ImageLimits::FRAME).unwrap();
        let n = count.people.len();
        println!(
            "{}: {n} counted, {truth} by hand, second model {}",
            path.display(),
            count.second
        );
        total_error += n.abs_diff(*truth);
    }
    let mae = total_error as f64 / labelled.len() as f64;
    println!("mean absolute error {mae:.3}");
    assert!(mae <= 0.5, "mean absolute error {mae:.3} > 0.5");
}

#[test]
fn tiles_find_the_small_people_of_a_1080p_crowd_that_one_pass_misses() {
    let counter = Counter::global().unwrap();
    let (crowd, truth) = fixtures::crowd();
    assert_eq!((crowd.width(), crowd.height()), (1920, 1080));
    let one = counter.primary.detect(&crowd).unwrap().len();
    let tiled = sliced::detect(&counter.primary, &crowd, &counter.slicing)
        .unwrap()
        .len();
    println!("{truth} people: one pass {one}, sliced {tiled}");
    assert!(one * 5 < tiled, "tiling finds far more: {one} vs {tiled}");
    // The people are 25–60 pixels tall here; tiling finds most of them and invents none.
    assert!(tiled * 10 >= truth * 6, "sliced {tiled} of {truth}");
    assert!(
        tiled <= truth,
        "sliced {tiled} > {truth}: people counted twice"
    );
}

#[test]
fn bad_bytes_are_the_callers_fault_not_the_services() {
    let counter = Counter::global().unwrap();
    let err = counter
        .count_bytes(b"<html>not a photo</html>", &ImageLimits::FRAME)
        .unwrap_err();
    assert!(
        matches!(err, VisionError::Image(ImageError::NotAnImage)),
        "{err:?}"
    );
    let status = civic_core::Error::from(err).status();
    assert_eq!(status.as_u16(), 400);
}
