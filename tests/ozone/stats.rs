//! Usage statistics from the rollups: every parameter, the CSV export, the events analytics,
//! calendar buckets in the configured time zone, and a cost that does not grow with the data.

use civic_testkit::api::Auth;
use civic_testkit::http::Resp;
use reqwest::header;
use serde_json::{Value, json};

use crate::{Api, MAC, OzoneResp, Session, series};

/// Ozone with seven treatments of esp32-001 between 20 August and 16 September 2025 (UTC),
/// and a user's session.
struct Rollups {
    api: Api,
    viewer: Session,
}

impl Rollups {
    async fn new() -> Self {
        let api = Api::start().await;
        let (admin, viewer) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let events = [
            ("2025-09-14T23:59:59Z", "BASIC"),
            ("2025-09-15T08:00:00Z", "BASIC"),
            ("2025-09-15T08:30:00Z", "PREMIUM"),
            ("2025-09-16T12:34:56Z", "STANDARD"),
            ("2025-09-16T12:34:10Z", "BASIC"),
            ("2025-09-16T13:00:00Z", "BASIC"),
            ("2025-08-20T10:00:00Z", "BASIC"),
        ];
        for (i, (ts, t)) in events.iter().enumerate() {
            api.event(&token, "esp32-001", &format!("s-{i}"), t, Some(ts))
                .await
                .ok();
        }
        Self { api, viewer }
    }

    /// `GET /test/stats/?{q}` as the user.
    async fn get(&self, q: &str) -> Resp {
        self.api
            .get(&format!("/test/stats/?{q}"), &self.viewer)
            .await
    }
}

#[tokio::test]
async fn day_buckets_sum_the_rollups_cumulatively_or_as_moving_averages() {
    let r = Rollups::new().await;
    let day = r.get("start=2025-09-14&end=2025-09-16").await;
    assert_eq!(
        day.ok()["labels"],
        json!(["2025-09-14", "2025-09-15", "2025-09-16"])
    );
    assert_eq!(
        (&day.body["granularity"], &day.body["time_zone"]),
        (&json!("day"), &json!("UTC"))
    );
    assert_eq!(series(&day.body, "total"), vec![1.0, 2.0, 3.0]);
    assert_eq!(series(&day.body, "BASIC"), vec![1.0, 1.0, 2.0]);
    assert_eq!(
        day.body["totals"],
        json!({"total": 6, "BASIC": 4, "STANDARD": 1, "PREMIUM": 1})
    );

    let cumulative = r
        .get("start=2025-09-14&end=2025-09-16&cumulative=true")
        .await;
    assert_eq!(series(&cumulative.body, "total"), vec![1.0, 3.0, 6.0]);
    let ma = r.get("start=2025-09-14&end=2025-09-16&ma=2").await;
    let avg = ma.body["moving_average"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "total")
        .unwrap();
    assert_eq!(avg["data"], json!([1.0, 1.5, 2.5]));
}

#[tokio::test]
async fn hour_minute_and_month_buckets() {
    let r = Rollups::new().await;
    let hour = r
        .get("granularity=hour&start=2025-09-16T12:00:00Z&end=2025-09-16T13:59:59Z")
        .await;
    assert_eq!(
        hour.body["labels"],
        json!(["2025-09-16T12:00:00Z", "2025-09-16T13:00:00Z"])
    );
    assert_eq!(series(&hour.body, "total"), vec![2.0, 1.0]);
    let minute = r
        .get("granularity=minute&start=2025-09-16T12:33:00Z&end=2025-09-16T12:35:00Z")
        .await;
    assert_eq!(series(&minute.body, "total"), vec![0.0, 2.0, 0.0]);
    let month = r
        .get("granularity=month&start=2025-08-01&end=2025-09-30")
        .await;
    assert_eq!(month.body["labels"], json!(["2025-08", "2025-09"]));
    assert_eq!(series(&month.body, "total"), vec![1.0, 6.0]);
}

#[tokio::test]
async fn stats_compare_with_the_previous_window_and_default_to_seven_days() {
    let r = Rollups::new().await;
    let compare = r.get("start=2025-09-16&end=2025-09-16&compare=true").await;
    assert_eq!(compare.body["previous"]["labels"], json!(["2025-09-15"]));
    assert_eq!(compare.body["previous"]["totals"]["total"], 2);
    assert_eq!(compare.body["change_pct"]["total"], 50.0);
    assert_eq!(compare.body["change_pct"]["STANDARD"], Value::Null);

    // The default window: the last 7 calendar days, today included.
    let default = r.get("").await;
    assert_eq!(default.body["labels"].as_array().unwrap().len(), 7);
    assert_eq!(
        r.get("days=30").await.body["labels"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
}

#[tokio::test]
async fn bad_stats_parameters_are_400() {
    let r = Rollups::new().await;
    let api = &r.api;
    for bad in [
        "granularity=week",
        "start=soon",
        "end=2025-13-01",
        "days=0",
        "days=x",
        "ma=-1",
        "cumulative=perhaps",
        "compare=2",
        "outlet_id=x",
        "machine_id=0",
        "start=2025-09-16&end=2025-09-15",
        "granularity=minute&start=2025-01-01&end=2025-03-01",
    ] {
        let res = r.get(bad).await;
        res.assert_error(400);
    }
    api.get("/test/stats/", Auth::None).await.assert_error(401);
}

#[tokio::test]
async fn the_csv_export_holds_the_same_stats() {
    let r = Rollups::new().await;
    let (api, viewer) = (&r.api, &r.viewer);
    // CSV export of the same stats, parsed back.
    let csv = api
        .get(
            "/test/stats-export.csv?start=2025-09-14&end=2025-09-16&ma=2&compare=true",
            viewer,
        )
        .await;
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("stats_export.csv")
    );
    let rows = csv.csv();
    assert_eq!(
        rows[0][..5],
        ["label", "total", "BASIC", "STANDARD", "PREMIUM"]
    );
    assert!(
        rows[0].contains(&"total_ma2".to_owned()) && rows[0].contains(&"previous_total".to_owned())
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3][..5], ["2025-09-16", "3", "2", "1", "0"]);
    let prev = rows[0].iter().position(|c| c == "previous_label").unwrap();
    assert_eq!(rows[1][prev], "2025-09-11");
    api.get("/test/stats-export.csv?granularity=year", viewer)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn events_analytics_come_from_the_day_rollups() {
    let r = Rollups::new().await;
    let (api, viewer) = (&r.api, &r.viewer);
    // Events analytics come from the day rollups.
    let an = api.get("/events/analytics/?days=3660", viewer).await;
    assert_eq!(an.ok()["total_treatments"], 7);
    assert_eq!(
        an.body["by_treatment"],
        json!({"BASIC": 5, "STANDARD": 1, "PREMIUM": 1})
    );
    assert_eq!(an.body["busiest_day"], "2025-09-16");
    assert_eq!(an.body["daily"].as_array().unwrap().len(), 3660);
    let recent = api
        .get("/events/analytics/?device_id=esp32-001", viewer)
        .await;
    assert_eq!(
        (
            &recent.body["total_treatments"],
            &recent.body["busiest_day"]
        ),
        (&json!(0), &Value::Null)
    );
    api.get("/events/analytics/?days=-3", viewer)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn stats_cost_the_same_round_trips_however_many_events() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let q = "/test/stats/?granularity=hour&start=2025-09-16&end=2025-09-16&compare=true";
    let before = api.get(q, &viewer).await.round_trips();
    for i in 0..60 {
        api.event(
            &token,
            "esp32-001",
            &format!("r-{i}"),
            "BASIC",
            Some(&format!("2025-09-16T{:02}:{:02}:00Z", i % 24, i)),
        )
        .await
        .ok();
    }
    let after = api.get(q, &viewer).await;
    assert_eq!(after.body["totals"]["total"], 60);
    assert_eq!(after.round_trips(), before);
    assert!(before <= 4, "session, user, two rollup queries: {before}");
    // Ingest is two round trips: the device read and one transaction.
    let ingest = api.event(&token, "esp32-001", "r-x", "BASIC", None).await;
    assert_eq!(ingest.round_trips(), 2);
}

#[tokio::test]
async fn calendar_buckets_follow_the_configured_time_zone() {
    let api = Api::with(&[], &[("OZONE_TIME_ZONE", "America/New_York")]).await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    // 03:30Z on 10 March is still 9 March in New York; the 9th is a 23-hour day (DST starts).
    for (i, ts) in [
        "2025-03-10T03:30:00Z",
        "2025-03-09T05:30:00Z",
        "2025-03-09T06:30:00Z",
        "2025-11-02T05:30:00Z",
        "2025-11-02T06:30:00Z",
    ]
    .iter()
    .enumerate()
    {
        api.event(&token, "esp32-001", &format!("tz-{i}"), "BASIC", Some(ts))
            .await
            .ok();
    }
    let day = api
        .get("/test/stats/?start=2025-03-09&end=2025-03-10", &viewer)
        .await;
    assert_eq!(day.body["time_zone"], "America/New_York");
    assert_eq!(series(&day.body, "total"), vec![3.0, 0.0]);
    // 00:30 and 01:30 EST; the skipped 02:00 hour is no bucket.
    let hours = api
        .get(
            "/test/stats/?granularity=hour&start=2025-03-09T00:00:00&end=2025-03-09T03:59:59",
            &viewer,
        )
        .await;
    assert_eq!(
        hours.body["labels"],
        json!([
            "2025-03-09T00:00:00-05:00",
            "2025-03-09T01:00:00-05:00",
            "2025-03-09T03:00:00-04:00"
        ])
    );
    assert_eq!(series(&hours.body, "total"), vec![1.0, 1.0, 0.0]);
    // The repeated 01:00 on 2 November is two buckets.
    let fall = api.get("/test/stats/?granularity=hour&start=2025-11-02T01:00:00-04:00&end=2025-11-02T01:59:59-05:00", &viewer).await;
    assert_eq!(
        fall.body["labels"],
        json!(["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"])
    );
    assert_eq!(series(&fall.body, "total"), vec![1.0, 1.0]);
    let month = api
        .get(
            "/test/stats/?granularity=month&start=2025-03-01&end=2025-03-31",
            &viewer,
        )
        .await;
    assert_eq!(series(&month.body, "total"), vec![3.0]);
}
