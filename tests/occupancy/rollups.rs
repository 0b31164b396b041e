//! Hourly, daily and monthly rollups: time-weighted averages, persons counted once, month and
//! daylight-saving boundaries, and history reads whose cost does not grow with the crossings.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::{Api, at, cross, days_since};

/// Camera `ROLL` with one day of crossings, known minute by minute: (camera, the day, the
/// `days` that reaches back to it).
async fn a_day_of_crossings(api: &Api) -> (i64, &'static str, i64) {
    let (cam, entry, exit, _) = api.camera("ROLL", None).await;
    // 10:00 one person, 10:30 two, 11:15 one (person 1 leaves), 12:00 the hour 11 closes.
    let day = "2026-11-02";
    let t = |hm: &str| at(&format!("{day}T{hm}:00Z"));
    let events = vec![
        cross(entry, "entry", t("10:00"), Some(1)),
        cross(entry, "entry", t("10:30"), Some(2)),
        cross(exit, "exit", t("11:15"), Some(1)),
        cross(entry, "entry", t("11:20"), Some(1)),
        cross(exit, "exit", t("11:20"), Some(1)),
        cross(entry, "entry", t("12:00"), Some(3)),
    ];
    assert_eq!(api.events(cam, events).await, 6);
    let days = days_since(t("00:00"));
    (cam, day, days)
}

#[tokio::test]
async fn hourly_rollups_are_time_weighted_and_count_persons_once() {
    let api = Api::start(&[]).await;
    let (cam, day, days) = a_day_of_crossings(&api).await;
    let hourly = api
        .get(&format!("/cameras/{cam}/hourly?days={days}"), None)
        .await;
    let hourly = hourly.is(200).as_array().unwrap().clone();
    let hours: Vec<&str> = hourly.iter().map(|h| h["hour"].as_str().unwrap()).collect();
    assert_eq!(
        hours,
        [
            format!("{day} 10:00"),
            format!("{day} 11:00"),
            format!("{day} 12:00")
        ]
    );
    let h10 = &hourly[0];
    assert_eq!(
        (
            h10["entries"].clone(),
            h10["exits"].clone(),
            h10["peak_occupancy"].clone(),
            h10["unique_persons"].clone()
        ),
        (json!(2), json!(0), json!(2), json!(2))
    );
    assert_eq!(h10["avg_occupancy"], 1.5); // 1 for 30 min, 2 for 30 min
    let h11 = &hourly[1];
    // 2 for 15 min, 1 for 5 min, 2 for 0 s, 1 for 40 min: (2·15 + 1·45) / 60 = 1.25 → 1.3
    assert_eq!(
        (
            h11["entries"].clone(),
            h11["exits"].clone(),
            h11["unique_persons"].clone()
        ),
        (json!(1), json!(2), json!(1))
    );
    assert_eq!(h11["avg_occupancy"], 1.3);
    assert_eq!(h11["peak_occupancy"], 2);
}

#[tokio::test]
async fn daily_and_monthly_rollups_count_persons_once() {
    let api = Api::start(&[]).await;
    let (cam, day, days) = a_day_of_crossings(&api).await;
    let daily = api
        .get(&format!("/cameras/{cam}/daily?days={days}"), None)
        .await;
    let d = &daily.is(200).as_array().unwrap().clone()[0];
    assert_eq!(
        (
            d["date"].clone(),
            d["entries"].clone(),
            d["exits"].clone(),
            d["peak_occupancy"].clone(),
            d["peak_hour"].clone()
        ),
        (json!(day), json!(4), json!(2), json!(2), json!(10))
    );
    assert_eq!(d["unique_persons"], 3);
    let monthly = api
        .get(&format!("/cameras/{cam}/monthly?months=24"), None)
        .await;
    let m = &monthly.is(200).as_array().unwrap().clone()[0];
    assert_eq!(
        (
            m["period"].clone(),
            m["entries"].clone(),
            m["exits"].clone(),
            m["unique_persons"].clone()
        ),
        (json!("2026-11"), json!(4), json!(2), json!(3))
    );
    assert!(m["avg_daily_occupancy"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn rollups_follow_month_and_dst_boundaries() {
    let api = Api::start(&[("OCCUPANCY_TIME_ZONE", "Europe/Berlin")]).await;
    let (cam, entry, exit, _) = api.camera("DST", None).await;
    // Berlin falls back on 25 October 2026 at 03:00 CEST: 02:00-03:00 local happens twice.
    let events = vec![
        cross(entry, "entry", at("2026-10-24T21:30:00Z"), Some(1)), // 23:30 on the 24th
        cross(entry, "entry", at("2026-10-25T00:30:00Z"), Some(2)), // 02:30 CEST
        cross(entry, "entry", at("2026-10-25T01:30:00Z"), Some(3)), // 02:30 CET
        cross(exit, "exit", at("2026-10-25T22:30:00Z"), Some(1)),   // 23:30 on the 25th
        cross(entry, "entry", at("2026-10-31T22:30:00Z"), Some(4)), // 23:30 on 31 October
        cross(entry, "entry", at("2026-10-31T23:30:00Z"), Some(5)), // 00:30 on 1 November
    ];
    assert_eq!(api.events(cam, events).await, 6);
    let days = days_since(at("2026-10-24T00:00:00Z"));
    let hourly = api
        .get(&format!("/cameras/{cam}/hourly?days={days}"), None)
        .await
        .body;
    let twice: Vec<&Value> = hourly
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["hour"] == "2026-10-25 02:00")
        .collect();
    assert_eq!(twice.len(), 2, "{hourly}");
    assert!(twice.iter().all(|h| h["entries"] == 1));

    let daily = api
        .get(&format!("/cameras/{cam}/daily?days={days}"), None)
        .await
        .body;
    let by_date = |d: &str| {
        daily
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["date"] == d)
            .cloned()
            .unwrap_or_else(|| panic!("{d} in {daily}"))
    };
    assert_eq!(by_date("2026-10-24")["entries"], 1);
    let d25 = by_date("2026-10-25");
    assert_eq!(
        (
            d25["entries"].clone(),
            d25["exits"].clone(),
            d25["peak_occupancy"].clone()
        ),
        (json!(2), json!(1), json!(3))
    );
    // A 25-hour day: 1 person 0:00-2:30 CEST (2.5 h), 2 until 2:30 CET (1 h), 3 until 23:30 (21 h),
    // 2 until midnight (0.5 h): (2.5 + 2 + 63 + 1) / 25 = 2.74.
    assert_eq!(d25["avg_occupancy"], 2.7);
    assert_eq!(d25["peak_hour"], 2);
    assert_eq!(by_date("2026-10-31")["entries"], 1);
    assert_eq!(by_date("2026-11-01")["entries"], 1);

    let monthly = api
        .get(&format!("/cameras/{cam}/monthly?months=24"), None)
        .await
        .body;
    let periods: Vec<(&str, i64)> = monthly
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["period"].as_str().unwrap(),
                m["entries"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(periods, [("2026-11", 1), ("2026-10", 4)], "newest first");
}

/// The benchmark, scaled for a test run: ingest rate on the embedded store, and the
/// round trips of `monthly?months=12` do not grow with the number of crossings.
#[tokio::test]
async fn history_reads_do_not_grow_with_crossings() {
    let api = Api::start(&[]).await;
    let (cam, entry, exit, _) = api.camera("BENCH", None).await;
    let start = Utc::now() - Duration::days(300);
    let mut sent = 0i64;
    let mut trips = Vec::new();
    let began = std::time::Instant::now();
    for round in 0..2 {
        let n = if round == 0 { 1000 } else { 4000 };
        for chunk in 0..n / 500 {
            let events: Vec<Value> = (0..500)
                .map(|i| {
                    let k = sent + chunk * 500 + i;
                    let t = start + Duration::minutes(k * 7);
                    cross(
                        if k % 2 == 0 { entry } else { exit },
                        if k % 2 == 0 { "entry" } else { "exit" },
                        t,
                        Some(k % 50),
                    )
                })
                .collect();
            assert_eq!(api.events(cam, events).await, 500);
        }
        sent += n;
        let res = api
            .get(&format!("/cameras/{cam}/monthly?months=12"), None)
            .await;
        assert_eq!(
            res.is(200)
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["entries"].as_i64().unwrap())
                .sum::<i64>(),
            sent / 2
        );
        trips.push(res.round_trips());
    }
    let rate = sent as f64 / began.elapsed().as_secs_f64();
    eprintln!(
        "occupancy ingest: {sent} crossings at {rate:.0}/s; monthly?months=12 round trips {trips:?}"
    );
    assert_eq!(trips[0], trips[1]);
    assert!(trips[0] <= 3);
}
