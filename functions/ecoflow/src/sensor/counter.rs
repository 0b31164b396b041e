//! `ecoflow-counter`: S3 `ObjectCreated` events for frames cameras uploaded
//! (`ecoflow/zones/{zone}/cameras/{camera}/uploads/{name}`), counted by the same
//! [`analyse`] as `sensor/detect/`.
//!
//! S3 delivers an event at least once, so an object is counted once per `(bucket, key, etag)`:
//! a marker written in the detection's own transaction (checked first, to skip the inference).
//! A frame the detector refuses (not an image, too large, an unknown or moved camera) is logged
//! and dropped: retrying would not change the answer. An object larger than the upload limit
//! ([`super::uploads::MAX_BYTES`]; presigned URLs never allow one, but anyone with bucket write
//! access could put one) is refused from its size alone, unread, and its marker records why,
//! so a redelivered event does not look again. Anything else fails the invocation, so Lambda
//! retries the event.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use civic_core::Result;
use civic_store::{Capped, Cond, PK, SK, StoreError};
use serde_json::{Value, json};

use super::uploads::MAX_BYTES;
use super::{Frame, Origin, analyse, upload_marker};
use crate::State;

/// What one record came to.
enum Outcome {
    Counted(i64),
    Duplicate,
    /// Not an upload frame (another prefix, or a frame `sensor/detect/` stored and counted).
    Ignored,
    /// Refused for the reason given.
    Rejected(String),
}

pub async fn run(s: State, event: S3Event) -> Result<Value> {
    let mut report = json!({"counted": [], "duplicates": 0, "ignored": 0, "rejected": []});
    for record in event.records {
        match count(&s, record).await? {
            Outcome::Counted(id) => report["counted"].as_array_mut().map(|a| a.push(id.into())),
            Outcome::Rejected(why) => report["rejected"]
                .as_array_mut()
                .map(|a| a.push(why.into())),
            Outcome::Duplicate => bump(&mut report["duplicates"]),
            Outcome::Ignored => bump(&mut report["ignored"]),
        };
    }
    Ok(report)
}

fn bump(n: &mut Value) -> Option<()> {
    *n = (n.as_i64()? + 1).into();
    Some(())
}

async fn count(s: &State, record: S3EventRecord) -> Result<Outcome> {
    let created = record
        .event_name
        .as_deref()
        .is_some_and(|n| n.starts_with("ObjectCreated:"));
    let object = record.s3.object;
    let Some(key) = object.key.as_deref().and_then(decode_key) else {
        return Ok(Outcome::Ignored);
    };
    let Some((zone_id, camera_id, name)) = parse_key(&key).filter(|_| created) else {
        return Ok(Outcome::Ignored);
    };
    let bucket = record.s3.bucket.name.unwrap_or_default();
    let etag = object.e_tag.unwrap_or_default();
    if s.table
        .get(&upload_marker(&bucket, &key, &etag))
        .await?
        .is_some()
    {
        return Ok(Outcome::Duplicate);
    }
    let object = match s.blob().get_capped(&key, MAX_BYTES as u64).await? {
        Some(Capped::Object(object)) => object,
        Some(Capped::TooLarge { size }) => {
            let why = format!("{key}: {size} bytes, larger than the {MAX_BYTES}-byte limit");
            tracing::warn!(key, size, "uploaded frame refused unread: too large");
            refuse(s, &upload_marker(&bucket, &key, &etag), &why).await?;
            return Ok(Outcome::Rejected(why));
        }
        None => {
            tracing::warn!(key, "uploaded frame is gone before it was counted");
            return Ok(Outcome::Rejected(format!("{key}: not found")));
        }
    };
    let frame = Frame {
        zone_id,
        camera_id,
        bytes: object.body,
        filename: name.to_owned(),
        origin: Origin::Upload {
            bucket,
            key: key.clone(),
            etag,
        },
    };
    match analyse(s, frame).await {
        Ok(Some(d)) => Ok(Outcome::Counted(d.id)),
        Ok(None) => Ok(Outcome::Duplicate),
        Err(e) if e.status().is_client_error() => {
            tracing::warn!(key, error = %e, "uploaded frame refused");
            Ok(Outcome::Rejected(format!("{key}: {e}")))
        }
        Err(e) => Err(e),
    }
}

/// Records a refused upload under its marker: the upload's failure state, and what makes a
/// redelivered event a duplicate.
async fn refuse(s: &State, marker: &civic_store::Key, why: &str) -> Result<()> {
    let mut item = civic_store::Item::new();
    item.insert(PK.into(), marker.pk.clone().into());
    item.insert(SK.into(), marker.sk.clone().into());
    item.insert("refused".into(), why.into());
    match s.table.put(item, Cond::NotExists).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `ecoflow/zones/{zone}/cameras/{camera}/uploads/{name}` → `(zone, camera, name)`.
fn parse_key(key: &str) -> Option<(i64, i64, &str)> {
    let rest = key.strip_prefix("ecoflow/zones/")?;
    let (zone, rest) = rest.split_once("/cameras/")?;
    let (camera, rest) = rest.split_once("/uploads/")?;
    let name = Some(rest).filter(|n| !n.is_empty() && !n.contains('/'))?;
    Some((zone.parse().ok()?, camera.parse().ok()?, name))
}

/// S3 event keys are URL-encoded, with `+` for a space.
fn decode_key(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::{decode_key, parse_key};

    #[test]
    fn keys_decode_and_only_upload_frames_parse() {
        assert_eq!(decode_key("a+b%2Fc%41").as_deref(), Some("a b/cA"));
        assert_eq!(decode_key("bad%4"), None);
        assert_eq!(
            parse_key("ecoflow/zones/3/cameras/7/uploads/f.jpg"),
            Some((3, 7, "f.jpg"))
        );
        for other in [
            "ecoflow/zones/3/cameras/7/frames/0000000001.jpg",
            "ecoflow/zones/3/cameras/7/uploads/",
            "ecoflow/zones/3/cameras/7/uploads/a/b.jpg",
            "ecoflow/zones/x/cameras/7/uploads/f.jpg",
            "occupancy/zones/3/cameras/7/uploads/f.jpg",
        ] {
            assert_eq!(parse_key(other), None, "{other}");
        }
    }
}
