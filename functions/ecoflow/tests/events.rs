//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use aws_lambda_events::s3::S3Event;
use axum::body::Body;
use civic_core::Platform;
use civic_testkit::lambda::{bearer, call, event, json_request, platform, text};
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());

    let (status, body) = call(&ecoflow::AUTH, &p, event("ecoflow-auth")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["role"], "ADMIN");
    let login = json!({"email": "jane@example.com", "password": "securepassword123"});
    let login = json_request(Method::POST, "/api/auth/login", login);
    let (status, body) = call(&ecoflow::AUTH, &p, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access"].as_str().unwrap().to_owned();

    // The placeholder token is refused in the app's format; a real one is accepted.
    let (status, body) = call(&ecoflow::SITES, &p, event("ecoflow-sites")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["detail"].is_string());
    let org = json!({"name": "HQ", "org_type": "Corporate"});
    let org = bearer(
        json_request(Method::POST, "/api/organizations", org),
        &token,
    );
    assert_eq!(call(&ecoflow::SITES, &p, org).await.0, StatusCode::CREATED);
    let (status, body) = call(&ecoflow::SITES, &p, bearer(event("ecoflow-sites"), &token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["name"], "HQ");

    let alert = json!({"heading": "Fire Drill"});
    let alert = bearer(json_request(Method::POST, "/api/alerts", alert), &token);
    assert_eq!(
        call(&ecoflow::ALERTS, &p, alert).await.0,
        StatusCode::CREATED
    );
    let (status, body) = call(
        &ecoflow::ALERTS,
        &p,
        bearer(event("ecoflow-alerts"), &token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["heading"], "Fire Drill");

    let (status, body) = call(&ecoflow::STATUS, &p, event("ecoflow-status")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"overall_status": "OK", "database": "OK", "external_service": "OK"})
        )
    );
}

/// Registers the auth sample's first user (an admin) and returns their access token.
async fn admin_token(p: &Platform) -> String {
    let (status, _) = call(&ecoflow::AUTH, p, event("ecoflow-auth")).await;
    assert_eq!(status, StatusCode::CREATED);
    let login = json!({"email": "jane@example.com", "password": "securepassword123"});
    let login = json_request(Method::POST, "/api/auth/login", login);
    call(&ecoflow::AUTH, p, login).await.1["access"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Organization 1, zone 1 and camera 1: the ids the sensor and counter samples name.
async fn sample_site(p: &Platform, token: &str) {
    for (path, body) in [
        (
            "/api/organizations",
            json!({"name": "HQ", "org_type": "Corporate"}),
        ),
        (
            "/api/zones",
            json!({"name": "Lobby", "zone_type": "Entrance", "capacity": 100, "organization_id": 1}),
        ),
        (
            "/api/cameras",
            json!({"name": "Front Desk Cam", "zone_id": 1}),
        ),
    ] {
        let (status, body) = call(
            &ecoflow::SITES,
            p,
            bearer(json_request(Method::POST, path, body), token),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// A GET of `path` as `token`.
fn get(path: &str, token: &str) -> http::Request<Body> {
    http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// The counter sample's S3 event, with a real photo stored under its key; returns the event,
/// the key and how many people the photo shows.
async fn stored_sample_frame(p: &Platform) -> (S3Event, String, usize) {
    let sample: S3Event = serde_json::from_str(&text("ecoflow-counter")).unwrap();
    let key = sample.records[0].s3.object.key.clone().unwrap();
    let (photo, people) = civic_vision::fixtures::labelled()
        .into_iter()
        .find(|(path, _)| path.ends_with("vtest-0105.jpg"))
        .unwrap();
    p.blob()
        .put(&key, std::fs::read(photo).unwrap().into(), "image/jpeg")
        .await
        .unwrap();
    (sample, key, people)
}

/// The sensor sample asks for an upload URL; the counter sample is S3's event for that upload:
/// run twice (S3 delivers at least once), it counts the frame once.
#[tokio::test]
async fn sensor_and_counter_samples_count_an_upload_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let token = admin_token(&p).await;
    sample_site(&p, &token).await;

    let (status, upload) = call(
        &ecoflow::SENSOR,
        &p,
        bearer(event("ecoflow-sensor"), &token),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    assert!(
        upload["key"]
            .as_str()
            .unwrap()
            .starts_with("ecoflow/zones/1/cameras/1/uploads/")
    );

    // The camera's PUT, as S3 stores it under the sample event's key.
    let (sample, key, people) = stored_sample_frame(&p).await;
    let first = (ecoflow::COUNTER.run)(&p, sample.clone()).await.unwrap();
    assert_eq!(
        (
            first["counted"].as_array().unwrap().len(),
            &first["duplicates"]
        ),
        (1, &json!(0)),
        "{first}"
    );
    let again = (ecoflow::COUNTER.run)(&p, sample).await.unwrap();
    assert_eq!(
        (
            again["counted"].as_array().unwrap().len(),
            &again["duplicates"]
        ),
        (0, &json!(1)),
        "{again}"
    );

    let list = get("/api/sensor/detections?zone_id=1", &token);
    let (status, list) = call(&ecoflow::SENSOR, &p, list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (&list[0]["source"], &list[0]["image_key"]),
        (&json!("UPLOAD"), &json!(key))
    );
    let counted = list[0]["detected_people"].as_i64().unwrap();
    assert!(
        (counted - people as i64).abs() <= 2,
        "counted {counted} of {people}"
    );

    let (_, stats) = call(&ecoflow::CARBON, &p, get("/api/carbon/stats", &token)).await;
    assert_eq!(
        stats["recent_history"].as_array().unwrap().len(),
        1,
        "{stats}"
    );
    assert_eq!(stats["summary"]["total_saved_all_time"], list[0]["saved"]);
}

/// IoT Core's request for a browser's CONNECT (`ecoflow-live-auth`): refused with the sample's
/// placeholder password, granted EcoFlow's live topics with a real access token in its place;
/// refused again, as are refresh tokens and other apps' tokens, once the account's tokens are
/// revoked (its token version moved).
#[tokio::test]
async fn the_sample_live_authorizer_event_checks_the_token_and_its_account() {
    use base64::Engine;
    use civic_runtime::live::{Account, decide};

    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let token = admin_token(&p).await;
    let authorizer = (ecoflow::live::LIVE.authorizer)(&p);
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:ecoflow-live-auth";
    let account = Account::of_function(arn, None).unwrap();
    let now = civic_core::time::now().unix_timestamp();
    let sample: serde_json::Value = serde_json::from_str(&text("ecoflow-live-auth")).unwrap();
    let ask = |password: &str| {
        let mut connect = sample.clone();
        let password = base64::engine::general_purpose::STANDARD.encode(password);
        connect["protocolData"]["mqtt"]["password"] = password.into();
        decide("ecoflow", &authorizer, connect, now, &account)
    };
    let placeholder = decide("ecoflow", &authorizer, sample.clone(), now, &account);
    assert!(!placeholder.await.unwrap().is_authenticated);

    let res = ask(&token).await.unwrap();
    assert!(res.is_authenticated, "{res:?}");
    assert_eq!(res.principal_id.as_deref(), Some("ecoflow1"));
    let policy = serde_json::to_value(&res.policy_documents).unwrap();
    let iot = "arn:aws:iot:eu-west-1:123456789012";
    assert_eq!(
        policy[0]["Statement"][1]["Resource"],
        json!([format!("{iot}:topicfilter/ecoflow/live/*")])
    );
    let login = json!({"email": "jane@example.com", "password": "securepassword123"});
    let login = json_request(Method::POST, "/api/auth/login", login);
    let refresh = call(&ecoflow::AUTH, &p, login).await.1["refresh"].clone();
    let mut claims = serde_json::Map::new();
    claims.insert("email".into(), "jane@example.com".into());
    let streetlight = civic_auth::Auth::for_app(&p, "streetlight");
    let streetlight = streetlight.access_token("1", "ADMIN", claims).unwrap();
    for (what, refused) in [
        ("refresh", refresh.as_str().unwrap()),
        ("foreign", &streetlight),
    ] {
        assert!(!ask(refused).await.unwrap().is_authenticated, "{what}");
    }

    // An operator revokes every token of the account.
    let table = p.table("ecoflow");
    let key = ecoflow::auth::user_key("jane@example.com");
    let mut user = table.get(&key).await.unwrap().expect("the user");
    user.insert("token_version".into(), 1.into());
    table.put(user, civic_store::Cond::Always).await.unwrap();
    assert!(!ask(&token).await.unwrap().is_authenticated, "revoked");
}

/// Issue 15, item 4, against moto's S3: the presigned URL is signed for one size, and an
/// oversize object put straight into the bucket (bypassing the URL) is refused by the counter
/// from its size alone, recorded as refused, and not looked at again.
mod upload_limits {
    use std::time::Duration;

    use civic_core::{Limits, Platform};
    use civic_store::Backend;
    use civic_testkit::moto;
    use ecoflow::sensor::uploads::MAX_BYTES;

    async fn moto_platform() -> (Platform, String) {
        let bucket = moto::unique("uploads");
        let backend = Backend::aws_with_config(&moto::aws_config().await, bucket.clone());
        backend.ensure_bucket().await.unwrap();
        backend.ensure_table("civic-ecoflow").await.unwrap();
        (
            Platform::new(backend, vec![7; 32], Limits::default()).unwrap(),
            bucket,
        )
    }

    #[tokio::test]
    async fn presigned_puts_sign_their_size() {
        let (p, _) = moto_platform().await;
        let key = "ecoflow/zones/1/cameras/1/uploads/a.jpg";
        let put = p
            .presign_put(key, "image/jpeg", 1000, Duration::from_secs(60), "")
            .await
            .unwrap();
        assert_eq!(put.headers["Content-Length"], "1000");
        // S3 checks every header named in X-Amz-SignedHeaders against the request: a body
        // of another size than 1000 bytes no longer matches the signature.
        let url = reqwest::Url::parse(&put.url).unwrap();
        let signed = url
            .query_pairs()
            .find(|(k, _)| k == "X-Amz-SignedHeaders")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let signed: Vec<&str> = signed.split(';').collect();
        assert!(
            signed.contains(&"content-length") && signed.contains(&"content-type"),
            "{signed:?}"
        );
        // The stated size is what the camera sends, and the bucket takes it.
        let res = reqwest::Client::new()
            .put(put.url.as_str())
            .header("content-type", "image/jpeg")
            .body(vec![0u8; 1000])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        let stored = p.blob().get(key).await.unwrap().unwrap();
        assert_eq!(stored.body.len(), 1000);
    }

    #[tokio::test]
    async fn an_oversize_object_in_the_bucket_is_refused_unread() {
        let (p, bucket) = moto_platform().await;
        let key = format!(
            "ecoflow/zones/1/cameras/1/uploads/{}.jpg",
            moto::unique("huge")
        );
        p.blob()
            .put(&key, vec![0xff; MAX_BYTES + 1].into(), "image/jpeg")
            .await
            .unwrap();
        let sample = civic_testkit::lambda::text("ecoflow-counter")
            .replace(
                "ecoflow/zones/1/cameras/1/uploads/5f0c1e7a2b3d4c5e8f9a0b1c2d3e4f50.jpg",
                &key,
            )
            .replace("civic-uploads-123456789012-eu-west-1", &bucket);
        let event: aws_lambda_events::s3::S3Event = serde_json::from_str(&sample).unwrap();

        let report = (ecoflow::COUNTER.run)(&p, event.clone()).await.unwrap();
        let why = report["rejected"][0].as_str().unwrap_or_default();
        assert!(
            why.contains(&format!("{} bytes, larger than", MAX_BYTES + 1)),
            "{report}"
        );
        assert_eq!(report["counted"], serde_json::json!([]), "{report}");
        // The refusal is recorded: the event delivered again is a duplicate, not a re-read.
        let again = (ecoflow::COUNTER.run)(&p, event).await.unwrap();
        assert_eq!(again["duplicates"], 1, "{again}");
    }
}
