//! Bad sensor uploads get DRF errors, never a 5xx, and record nothing.

use reqwest::{Client, Method};
use serde_json::json;

use super::{multipart, photo};
use crate::{Api, Expect};

/// A running EcoFlow with zones Lobby (camera A) and Dock (camera B), and a user's token.
struct Site {
    api: Api,
    user: String,
    zone: i64,
    cam: i64,
    /// A camera of the other zone.
    elsewhere: i64,
}

async fn site() -> Site {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let org = api.org(&admin, "HQ").await;
    let (zone, other) = (
        api.zone(&admin, org, "Lobby").await,
        api.zone(&admin, org, "Dock").await,
    );
    let (cam, elsewhere) = (
        api.camera(&admin, zone, "A").await,
        api.camera(&admin, other, "B").await,
    );
    Site {
        api,
        user,
        zone,
        cam,
        elsewhere,
    }
}

/// After refused uploads: no detection and no carbon were recorded.
async fn nothing_was_recorded(api: &Api, user: &str) {
    assert_eq!(
        api.get("/sensor/detections/", user).await.is(200),
        &json!([])
    );
    assert_eq!(
        api.get("/carbon/stats/?zone_id=x", user)
            .await
            .field("zone_id"),
        "Enter a whole number."
    );
    assert_eq!(
        api.get("/carbon/stats/", user).await.is(200)["summary"]["total_saved_all_time"],
        0.0
    );
}

#[tokio::test]
async fn missing_or_mistyped_form_fields_are_per_field_errors() {
    let Site { api, user, .. } = site().await;
    let empty = api.detect(&user, &[]).await;
    assert_eq!(
        empty.is(400),
        &json!({"zone_id": ["This field is required."], "camera_id": ["This field is required."], "file": ["No file was submitted."]})
    );
    let typed = api
        .detect(
            &user,
            &[
                ("zone_id", None, b"abc"),
                ("camera_id", None, b"1"),
                ("file", None, b"not a file"),
            ],
        )
        .await;
    assert_eq!(typed.field("zone_id"), "A valid integer is required.");
    assert_eq!(
        typed.field("file"),
        "The submitted data was not a file. Check the encoding type on the form."
    );
    let blank = api
        .detect(
            &user,
            &[
                ("zone_id", None, b"1"),
                ("camera_id", None, b"1"),
                ("file", Some("a.jpg"), b""),
            ],
        )
        .await;
    assert_eq!(blank.field("file"), "The submitted file is empty.");
    nothing_was_recorded(&api, &user).await;
}

#[tokio::test]
async fn a_zone_or_camera_that_does_not_exist_or_belong_is_refused() {
    let Site {
        api,
        user,
        zone,
        cam,
        elsewhere,
    } = site().await;
    let (frame, _) = photo("vtest-0001.jpg");
    assert_eq!(
        api.detect_photo(&user, 999, cam, &frame)
            .await
            .field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.detect_photo(&user, zone, 999, &frame)
            .await
            .field("camera_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.detect_photo(&user, zone, elsewhere, &frame)
            .await
            .field("camera_id"),
        format!("Camera {elsewhere} is not in zone {zone}.")
    );
    nothing_was_recorded(&api, &user).await;
}

#[tokio::test]
async fn files_that_are_not_whole_images_are_refused() {
    let Site {
        api,
        user,
        zone,
        cam,
        ..
    } = site().await;
    let not_an_image =
        "Upload a valid image. The file you uploaded was either not an image or a corrupted image.";
    assert_eq!(
        api.detect_photo(&user, zone, cam, b"just some text, no pixels")
            .await
            .field("file"),
        not_an_image
    );
    // Truncated: a PNG cut in half (the JPEG decoder pads a cut-off JPEG with grey instead).
    let (png, _) = photo("astronaut.png");
    assert_eq!(
        api.detect_photo(&user, zone, cam, &png[..png.len() / 2])
            .await
            .field("file"),
        not_an_image
    );
    // A decompression bomb: a small PNG whose header claims 4000×4000 pixels.
    let mut bomb = Vec::new();
    image::GrayImage::new(4000, 4000)
        .write_to(
            &mut std::io::Cursor::new(&mut bomb),
            image::ImageFormat::Png,
        )
        .unwrap();
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    let msg = api
        .detect_photo(&user, zone, cam, &bomb)
        .await
        .field("file")
        .to_owned();
    assert!(msg.contains("4000x4000"), "{msg}");
    nothing_was_recorded(&api, &user).await;
}

#[tokio::test]
async fn oversize_and_non_multipart_bodies_are_refused() {
    let Site {
        api, user, zone, ..
    } = site().await;
    // Larger than the body limit (1 MiB): 413 before anything is read, on a connection of its own.
    let big = vec![0u8; 2 << 20];
    let (kind, body) = multipart(&[
        ("zone_id", None, b"1"),
        ("camera_id", None, b"1"),
        ("file", Some("big.jpg"), &big),
    ]);
    // The server answers from the Content-Length and closes without reading the body, so a
    // client still writing it can see a broken pipe before it reads the answer (a race, seen
    // once under load): only that transport error is tried again.
    let mut tries = 0;
    let res = loop {
        let req = Client::new()
            .post(api.url("/sensor/detect/"))
            .bearer_auth(&user)
            .header("content-type", &kind)
            .body(body.clone());
        match req.send().await {
            Ok(res) => break res,
            Err(e) if e.is_request() && tries < 3 => tries += 1,
            Err(e) => panic!("oversize upload: {e:?}"),
        }
    };
    assert_eq!(res.status().as_u16(), 413);
    let refused: serde_json::Value = res.json().await.unwrap();
    assert_eq!(refused.as_object().map(|o| o.len()), Some(1), "{refused}");
    assert!(refused["detail"].is_string(), "{refused}");
    let json_body = api
        .post("/sensor/detect/", &user, json!({"zone_id": zone}))
        .await;
    assert!(json_body.detail(415).starts_with("Unsupported media type"));
    let garbled = "multipart/form-data; boundary=x";
    api.raw(
        Method::POST,
        "/sensor/detect/",
        &user,
        garbled,
        "--x\r\nnonsense",
    )
    .await
    .detail(400);
    nothing_was_recorded(&api, &user).await;
}
