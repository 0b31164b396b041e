use serde_json::json;

use super::*;

#[test]
fn coordinates_keep_six_decimals_and_their_range() {
    assert_eq!(decimal6("40.7128", 90.0).unwrap(), "40.712800");
    assert_eq!(decimal6("-74.006", 180.0).unwrap(), "-74.006000");
    assert_eq!(decimal6("90", 90.0).unwrap(), "90.000000");
    for bad in [
        "90.000001",
        "-91",
        "1.1234567",
        "abc",
        "NaN",
        "inf",
        "1e2",
        "",
    ] {
        assert!(decimal6(bad, 90.0).is_err(), "{bad}");
    }
}

#[test]
fn every_bad_field_is_reported() {
    let mut b = Body::of(json!({"name": " ", "n": "x", "flag": "maybe", "lat": 100, "s": [1]}));
    assert_eq!(b.string("name", true, false, 10), None);
    assert_eq!(b.int("n", true, 0..=5), None);
    assert_eq!(b.bool("flag", false), None);
    assert_eq!(b.coordinate("lat", 90.0), None);
    assert_eq!(b.string("s", false, true, 10), None);
    assert_eq!(b.string("missing", true, true, 10), None);
    let Err(Error::Fields(errors)) = b.finish() else {
        panic!("errors expected")
    };
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["name", "n", "flag", "lat", "s", "missing"]);
}

#[test]
fn partial_updates_skip_absent_fields_and_nulls_clear_coordinates() {
    let mut b = Body::of(json!({"latitude": null, "capacity": "7"})).partial();
    assert_eq!(b.string("name", true, false, 10), None);
    assert_eq!(b.coordinate("latitude", 90.0), Some(None));
    assert_eq!(b.coordinate("longitude", 180.0), None);
    assert_eq!(b.int("capacity", true, 0..=10), Some(7));
    assert!(b.finish().is_ok());
}

#[test]
fn required_text_may_not_be_blank_and_checks_record_their_errors() {
    let mut b = Body::of(json!({"a": " x ", "blank": "  ", "null": null}));
    assert_eq!(b.required_text("a").as_deref(), Some("x"));
    assert_eq!(b.required_text("blank"), None);
    assert_eq!(b.required_text("null"), None);
    assert_eq!(b.required_text("absent"), None);
    assert_eq!(b.check(Err::<(), _>(Error::field("mac", "Bad."))), None);
    assert_eq!(b.check(Ok::<_, Error>(7)), Some(7));
    let Err(Error::Fields(errors)) = b.finish() else {
        panic!("errors expected")
    };
    let fields: Vec<(&str, &str)> = errors
        .iter()
        .map(|(f, m)| (f.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("blank", REQUIRED),
            ("null", REQUIRED),
            ("absent", REQUIRED),
            ("mac", "Bad.")
        ]
    );
    let mut patch = Body::of(json!({"blank": "", "null": null})).partial();
    assert_eq!(patch.required_text("absent"), None);
    assert_eq!(patch.required_text("null"), None);
    assert_eq!(patch.required_text("blank"), None);
    let Err(Error::Fields(errors)) = patch.finish() else {
        panic!("errors expected")
    };
    assert_eq!(errors, [("blank".to_owned(), REQUIRED.to_owned())]);
    let mut wrong = Body::of(json!({"a": 5}));
    assert_eq!(wrong.required_text("a"), None);
    assert!(matches!(wrong.finish(), Err(Error::BadRequest(_))));
}

#[test]
fn typed_fields_keep_serdes_strictness_and_refuse_the_whole_body() {
    let mut b = Body::of(json!({"name": " Ann ", "n": 5, "null": null, "blank": " "}));
    assert_eq!(
        b.strict_string("name", true, false, 10).as_deref(),
        Some("Ann")
    );
    assert_eq!(b.typed::<i64>("n", true), Some(5));
    assert_eq!(b.typed::<String>("null", true), None);
    assert_eq!(b.strict_string("blank", true, false, 10), None);
    let Err(Error::Fields(errors)) = b.finish() else {
        panic!("errors expected")
    };
    assert_eq!(
        errors,
        [
            ("null".to_owned(), REQUIRED.to_owned()),
            ("blank".to_owned(), BLANK.to_owned())
        ]
    );
    let mut b = Body::of(json!({"name": 5, "n": "x"}));
    assert_eq!(b.strict_string("name", true, false, 10), None);
    assert_eq!(b.typed::<i64>("n", true), None);
    assert_eq!(b.typed::<String>("absent", true), None);
    let Err(Error::BadRequest(msg)) = b.finish() else {
        panic!("a refusal expected")
    };
    assert_eq!(
        msg,
        "Invalid request body: name: invalid type: integer `5`, expected a string"
    );
    let mut patch = Body::of(json!({"null": null})).partial();
    assert!(patch.is_partial());
    assert_eq!(patch.typed::<String>("null", true), None);
    assert_eq!(patch.typed::<String>("absent", true), None);
    assert!(patch.finish().is_ok());
}

#[test]
fn the_first_refusal_is_the_answer_before_any_field_error() {
    let mut b = Body::of(json!({"n": "x"}));
    assert_eq!(b.typed::<i64>("n", false), None);
    assert_eq!(b.refuse::<i64>("n is required"), None);
    b.error("m", REQUIRED);
    let Err(Error::BadRequest(msg)) = b.finish() else {
        panic!("a refusal expected")
    };
    assert!(msg.starts_with("Invalid request body: n: "), "{msg}");
    let mut b = Body::of(json!({}));
    b.error("m", REQUIRED);
    b.refuse::<()>("first");
    b.refuse::<()>("second");
    let Err(Error::BadRequest(msg)) = b.finish() else {
        panic!("a refusal expected")
    };
    assert_eq!(msg, "first");
}

struct Room {
    name: String,
    size: Option<i64>,
}

impl FromBody for Room {
    fn from_body(b: &mut Body) -> Self {
        Self {
            name: b.string("name", true, false, 10).unwrap_or_default(),
            size: b.int("size", false, 1..=9),
        }
    }
}

#[test]
fn read_hands_over_a_checked_input_or_every_field_error() {
    let room: Room = Body::of(json!({"name": " Attic ", "size": "3"}))
        .read()
        .unwrap();
    assert_eq!((room.name.as_str(), room.size), ("Attic", Some(3)));
    let Err(Error::Fields(errors)) = Body::of(json!({"size": 12})).read::<Room>() else {
        panic!("errors expected")
    };
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["name", "size"]);
    let patch: Room = Body::of(json!({"size": 2})).partial().read().unwrap();
    assert_eq!((patch.name.as_str(), patch.size), ("", Some(2)));
}
