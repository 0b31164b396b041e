use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use civic_store::Item;

use super::plan::Plan;
use super::{Crossing, Ctx, Live, Op, counts};
use crate::cameras::{Camera, CameraType, Direction, Record};
use crate::keys::crossed_marker;

fn record(max: Option<i64>) -> Record {
    let camera = Camera {
        id: 1,
        camera_id: "GATE_A".into(),
        camera_name: "Gate A".into(),
        location: None,
        camera_type: CameraType::Bidirectional,
        is_active: true,
        max_occupancy: max,
        resolution_width: 1920,
        resolution_height: 1080,
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    Record {
        camera,
        live: Live::default(),
        version: 1,
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn cross(at: &str, kind: Crossing) -> Op {
    Op::Cross {
        at: utc(at),
        kind,
        track: None,
        line: 1,
    }
}

/// Applies ops to a fresh plan with an empty baseline.
fn run(rec: &Record, baseline: &Item, ops: &[Op], check: impl FnOnce(&Plan)) {
    let (seen, ids) = (BTreeSet::new(), BTreeMap::new());
    let ctx = Ctx {
        tz: chrono_tz::UTC,
        now: Utc::now(),
        silence_secs: 900,
        facility: crate::aggregate::Mode::Stream,
        baseline: Some(baseline),
        seen: &seen,
        ids: &ids,
    };
    let mut plan = Plan::new(&ctx, rec);
    ops.iter().for_each(|op| plan.apply(op));
    check(&plan);
}

#[test]
fn a_tracked_crossing_counts_once_an_untracked_one_every_time() {
    let tracked = |track: &str| Op::Cross {
        at: utc("2026-11-02T10:00:00Z"),
        kind: Crossing::Entry,
        track: Some(track.into()),
        line: 1,
    };
    let untracked = cross("2026-11-02T10:00:00Z", Crossing::Entry);
    let ops = [
        tracked("7"),
        tracked("7"),
        tracked("8"),
        untracked.clone(),
        untracked,
    ];
    run(&record(None), &Item::new(), &ops, |p| {
        assert_eq!((p.accepted, p.live.occupancy), (4, 4));
    });
    // Stored by an earlier delivery: the transaction was cancelled on its marker.
    let seen = BTreeSet::from([crossed_marker(
        1,
        1,
        utc("2026-11-02T10:00:00Z"),
        Crossing::Entry,
        "7",
    )]);
    let ids = BTreeMap::new();
    let ctx = Ctx {
        tz: chrono_tz::UTC,
        now: Utc::now(),
        silence_secs: 900,
        facility: crate::aggregate::Mode::Stream,
        baseline: None,
        seen: &seen,
        ids: &ids,
    };
    let mut plan = Plan::new(&ctx, &record(None));
    plan.apply(&tracked("7"));
    assert_eq!((plan.accepted, plan.live.occupancy), (0, 0));
    assert!(plan.markers.is_empty());
}

#[test]
fn lines_and_cameras_decide_what_counts() {
    use {CameraType as C, Crossing as X, Direction as D};
    assert!(counts(C::Bidirectional, D::Bidirectional, X::Exit));
    assert!(counts(C::Bidirectional, D::Entry, X::Entry));
    assert!(!counts(C::Bidirectional, D::Entry, X::Exit));
    assert!(!counts(C::Bidirectional, D::Exit, X::Entry));
    assert!(!counts(C::EntryOnly, D::Bidirectional, X::Exit));
    assert!(counts(C::ExitOnly, D::Exit, X::Exit));
}

#[test]
fn occupancy_never_goes_below_zero_and_capacity_is_watched() {
    let ops: Vec<Op> = std::iter::once(cross("2026-11-02T10:00:00Z", Crossing::Exit))
        .chain((0..5).map(|_| cross("2026-11-02T10:01:00Z", Crossing::Entry)))
        .collect();
    run(&record(Some(4)), &Item::new(), &ops, |p| {
        assert_eq!(p.live.occupancy, 5);
        assert_eq!((p.live.total_entries, p.live.total_exits), (5, 1));
        let kinds: Vec<&str> = p.triggers.keys().copied().collect();
        assert_eq!(
            kinds,
            ["capacity_exceeded", "capacity_warning", "negative_count"]
        );
        assert_eq!(
            p.triggers["capacity_exceeded"].message,
            "Occupancy (5) exceeds capacity (4)"
        );
    });
}

#[test]
fn leaving_an_hour_closes_it_with_its_time_weighted_average() {
    let ops = [
        cross("2026-11-02T10:00:00Z", Crossing::Entry),
        cross("2026-11-02T10:45:00Z", Crossing::Entry),
        cross("2026-11-02T11:30:00Z", Crossing::Exit),
    ];
    run(&record(None), &Item::new(), &ops, |p| {
        // 1 for 45 min, 2 for 15 min: 1.25; the baseline learns the closed hour.
        let hour = &p.buckets["HOUR#2026-11-02T10:00Z"];
        let snap = hour.snapshot.as_ref().unwrap();
        assert_eq!((snap.avg, snap.peak), (Some(1.25), 2));
        assert_eq!(hour.entries, 2);
        assert_eq!(p.baseline["f_10"], 2.0); // Monday 10:00 is slot 10
        assert_eq!(p.live.hour_flow, 1);
        assert_eq!(p.live.occupancy, 1);
    });
}

#[test]
fn anomalies_need_three_earlier_weeks_of_the_same_hour() {
    let mut base = Item::new();
    for (k, v) in [
        ("n_10", 3.0),
        ("f_10", 12.0),
        ("ff_10", 48.0),
        ("p_10", 6.0),
        ("pp_10", 12.0),
    ] {
        base.insert(k.into(), v.into());
    }
    // Usual flow 4 (σ 0, so the limit is 4 + 3·1 = 7): an eighth crossing is an anomaly.
    let ops: Vec<Op> = (0..8)
        .map(|i| {
            cross(
                "2026-11-02T10:05:00Z",
                if i % 2 == 0 {
                    Crossing::Entry
                } else {
                    Crossing::Exit
                },
            )
        })
        .collect();
    run(&record(None), &base, &ops[..7], |p| {
        assert!(p.triggers.is_empty())
    });
    run(&record(None), &base, &ops, |p| {
        assert!(p.triggers.contains_key("anomaly_detected"))
    });
    base.insert("n_10".into(), 2.0.into());
    run(&record(None), &base, &ops, |p| {
        assert!(p.triggers.is_empty())
    });
}
