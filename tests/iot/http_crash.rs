//! Acknowledged means stored over HTTP too: Ozone device events and Occupancy crossings arrive
//! on 16 connections at once, civic-local is killed (SIGKILL) mid-stream and restarted on its
//! data dir. Every request answered 2xx is there after the restart, and sending the
//! acknowledged requests again changes nothing. This is what proves that a store which commits
//! many writes under one fsync (issue 17) acknowledges none of them before that fsync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use civic_testkit::local::LocalServer;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{BIN, Platform, ozone_event};

/// Connections per stream: 8 devices' worth of events and 8 of crossings, 16 in all.
const CONNECTIONS: usize = 8;
/// More of each than can be sent before the crash, so that the crash comes mid-stream.
const EVENTS: usize = 20_000;
const BATCHES: usize = 5_000;
/// The crash comes once this many events and crossing batches have been acknowledged.
const CRASH_AFTER: (usize, usize) = (300, 100);
/// Crossing batches go round these cameras, so each has two writers racing for it.
const CAMERAS: usize = 4;
/// Each batch is 3 entries and 1 exit.
const ENTRIES: i64 = 3;
/// However slow the machine, nothing the test waits on takes this long.
const PATIENCE: Duration = Duration::from_secs(30);

/// One request of a stream: the n-th event, or the n-th batch of crossings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Req {
    Event(usize),
    Batch(usize),
}

/// What the streams send, to which cameras, as which device.
struct Streams {
    token: String,
    /// Each camera's id and its one (bidirectional) line.
    cameras: Vec<(i64, i64)>,
    /// The first crossing's time; the rest follow a millisecond apart, all in the past.
    start: DateTime<Utc>,
    next: [AtomicUsize; 2],
    /// Set just before the kill: a transport error before it is a failure.
    crashed: AtomicBool,
}

impl Streams {
    /// The next request of a stream (0: events, 1: batches), until it runs out.
    fn next(&self, stream: usize) -> Option<Req> {
        let n = self.next[stream].fetch_add(1, Ordering::SeqCst);
        match stream {
            0 => (n < EVENTS).then_some(Req::Event(n)),
            _ => (n < BATCHES).then_some(Req::Batch(n)),
        }
    }

    fn camera(&self, batch: usize) -> (i64, i64) {
        self.cameras[batch % CAMERAS]
    }

    /// The request as sent to `base`: always the same body for the same `req`, so a resend
    /// is the same event or the same tracked crossings.
    fn request(&self, http: &reqwest::Client, base: &str, req: Req) -> reqwest::RequestBuilder {
        match req {
            Req::Event(n) => {
                let mut event = ozone_event(n);
                event["device_id"] = json!("dev-a");
                http.post(format!("{base}/ozone/api/device/events/"))
                    .bearer_auth(&self.token)
                    .json(&event)
            }
            Req::Batch(n) => {
                let (cam, line) = self.camera(n);
                let crossing = |j: usize| {
                    let at = self.start + chrono::Duration::milliseconds((n * 4 + j) as i64);
                    // Three people come in and the first of them leaves.
                    json!({"line_id": line, "direction": if j < 3 { "entry" } else { "exit" },
                        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                        "confidence": 0.9, "track_id": format!("p{n}-{}", j % 3)})
                };
                let events: Vec<Value> = (0..4).map(crossing).collect();
                http.post(format!(
                    "{base}/occupancy/api/occupancy/cameras/{cam}/events"
                ))
                .json(&json!({ "events": events }))
            }
        }
    }
}

/// A request's answer: `Some` body when acknowledged (2xx), `None` when not (cut off by the
/// crash, or a 409 that a client would retry).
type Answer = (Req, Option<Value>);

/// One connection sending one stream's requests one after another until the crash or the end
/// of the stream, reporting every answer.
async fn connection(
    streams: Arc<Streams>,
    base: String,
    stream: usize,
    tx: mpsc::UnboundedSender<Answer>,
) {
    // A client each: its own connection.
    let http = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    while let Some(req) = streams.next(stream) {
        let res = match streams.request(&http, &base, req).send().await {
            Ok(res) => res,
            Err(e) => {
                let _ = tx.send((req, None));
                assert!(
                    streams.crashed.load(Ordering::SeqCst),
                    "{req:?} before the crash: {e}"
                );
                return;
            }
        };
        let status = res.status();
        let body = match res.json::<Value>().await {
            Ok(body) => body,
            // Headers came, the body did not: the crash cut it.
            Err(_) if streams.crashed.load(Ordering::SeqCst) => {
                let _ = tx.send((req, None));
                return;
            }
            Err(e) => panic!("{req:?}: {status}: {e}"),
        };
        let answer = match status {
            s if s.is_success() => Some(body),
            // Two writers raced for the same camera until one gave up.
            StatusCode::CONFLICT if matches!(req, Req::Batch(_)) => None,
            s => panic!("{req:?}: {s}: {body}"),
        };
        let _ = tx.send((req, answer));
    }
}

/// Every request sent, and the answers of those acknowledged.
#[derive(Default)]
struct Log {
    acked: BTreeMap<Req, Value>,
    unacked: BTreeSet<Req>,
}

impl Log {
    fn record(&mut self, (req, answer): Answer) {
        match answer {
            Some(body) => assert!(self.acked.insert(req, body).is_none(), "{req:?} twice"),
            None => assert!(self.unacked.insert(req), "{req:?} twice"),
        }
    }

    fn acked_events(&self) -> usize {
        self.acked
            .keys()
            .filter(|r| matches!(r, Req::Event(_)))
            .count()
    }

    fn acked_batches(&self) -> usize {
        self.acked.len() - self.acked_events()
    }

    fn sent(&self) -> impl Iterator<Item = Req> + '_ {
        self.acked.keys().chain(&self.unacked).copied()
    }
}

fn event_id(n: usize) -> String {
    format!("crash-{n:05}")
}

/// Acknowledged means stored: events and crossings sent over 16 connections, a crash
/// (SIGKILL) in the middle of them, and after the restart every acknowledged request is there
/// once; sending them all again changes nothing, and sending what was cut off completes it.
#[tokio::test]
async fn acknowledged_requests_are_stored_and_survive_a_crash() {
    let api = Platform::start().await;
    let (_, dev_a) = api.ozone().await;
    let mut cameras = Vec::new();
    for n in 0..CAMERAS {
        cameras.push(camera(&api, n).await);
    }
    let streams = Arc::new(Streams {
        token: dev_a.password,
        cameras,
        start: Utc::now() - chrono::Duration::seconds(30),
        next: [AtomicUsize::new(0), AtomicUsize::new(0)],
        crashed: AtomicBool::new(false),
    });
    let (tx, mut answers) = mpsc::unbounded_channel();
    let mut connections: Vec<_> = (0..2 * CONNECTIONS)
        .map(|c| {
            let (streams, base) = (streams.clone(), api.server.base.clone());
            tokio::spawn(connection(streams, base, c % 2, tx.clone()))
        })
        .collect();
    drop(tx);

    let mut log = Log::default();
    while log.acked_events() < CRASH_AFTER.0 || log.acked_batches() < CRASH_AFTER.1 {
        let answer = tokio::time::timeout(PATIENCE, answers.recv()).await;
        log.record(answer.expect("answers keep coming").expect("connections"));
        if let Some(c) = connections.iter().position(|c| c.is_finished()) {
            connections.swap_remove(c).await.unwrap();
            panic!("a stream ended before the crash");
        }
    }
    streams.crashed.store(true, Ordering::SeqCst);
    let Platform { server, http } = api;
    let dir = server.crash().await.expect("the data dir");
    for c in connections {
        tokio::time::timeout(PATIENCE, c)
            .await
            .expect("connections stop after the crash")
            .unwrap();
    }
    // What else was answered before the process died.
    while let Ok(answer) = answers.try_recv() {
        log.record(answer);
    }
    eprintln!(
        "acknowledged before the crash: {} events, {} batches; not acknowledged: {:?}",
        log.acked_events(),
        log.acked_batches(),
        log.unacked
    );
    let api = Platform {
        server: LocalServer::start_in(BIN, dir.path(), &[], &[]).await,
        http,
    };
    events_survive(&api, &streams, &log).await;
    crossings_survive(&api, &streams, &log).await;
}

/// Occupancy camera `CAM{n}` (bidirectional, no capacity) with one bidirectional line.
async fn camera(api: &Platform, n: usize) -> (i64, i64) {
    let camera = json!({"camera_id": format!("CAM{n}"), "camera_name": format!("Gate {n}"), "location": "Main Gate", "camera_type": "bidirectional", "resolution_width": 1920, "resolution_height": 1080});
    let created = api
        .post("/occupancy/api/occupancy/cameras", None, camera)
        .await;
    let cam = created.ok()["id"].as_i64().unwrap();
    let line = json!({"camera_id": cam, "line_name": "Door", "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": "bidirectional", "confidence_threshold": 0.5});
    let line = api.post("/occupancy/api/occupancy/lines", None, line).await;
    (cam, line.ok()["id"].as_i64().unwrap())
}

/// Sends `reqs` again over 16 connections, each until it is answered 2xx (a 409 is a lost
/// race for a camera, which a client retries): their answers.
async fn resend(api: &Platform, streams: &Streams, reqs: Vec<Req>) -> BTreeMap<Req, Value> {
    let base = api.server.base.as_str();
    let send = |req| async move {
        for _ in 0..20 {
            let res = streams
                .request(&api.http, base, req)
                .send()
                .await
                .expect("an answer");
            let (status, body) = (res.status(), res.json::<Value>().await.expect("JSON"));
            match status {
                s if s.is_success() => return (req, body),
                StatusCode::CONFLICT => tokio::time::sleep(Duration::from_millis(50)).await,
                s => panic!("{req:?} again: {s}: {body}"),
            }
        }
        panic!("{req:?} again: 409 twenty times");
    };
    futures::stream::iter(reqs)
        .map(send)
        .buffer_unordered(2 * CONNECTIONS)
        .collect()
        .await
}

/// All of `dev-a`'s events, newest first, page by page.
async fn all_events(api: &Platform, cookie: &str) -> Vec<Value> {
    let (mut events, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..=EVENTS / 1000 {
        let mut query = vec![
            ("device_id", "dev-a".to_owned()),
            ("limit", "1000".to_owned()),
        ];
        query.extend(cursor.map(|c| ("cursor", c)));
        let url = api.server.url("/ozone/api/events/");
        let page = api.staff(cookie, api.http.get(url).query(&query)).await;
        events.extend(page.ok().as_array().unwrap().iter().cloned());
        cursor = page
            .headers
            .get("x-next-cursor")
            .map(|c| c.to_str().unwrap().to_owned());
        if cursor.is_none() {
            return events;
        }
    }
    panic!("more pages than events");
}

/// The ids of `events`, each stored once.
fn stored_once(events: &[Value]) -> BTreeSet<String> {
    let ids: BTreeSet<_> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), events.len(), "an event stored twice");
    ids
}

/// Every acknowledged event is stored once; sending them again acknowledges each with its id
/// and stores nothing; sending what was cut off stores each of them once.
async fn events_survive(api: &Platform, streams: &Streams, log: &Log) {
    let cookie = api.ozone_session().await;
    let before = all_events(api, &cookie).await;
    let stored = stored_once(&before);
    let acked: Vec<Req> = log
        .acked
        .keys()
        .filter(|r| matches!(r, Req::Event(_)))
        .copied()
        .collect();
    let sent: BTreeSet<String> = log
        .sent()
        .filter_map(|r| match r {
            Req::Event(n) => Some(event_id(n)),
            Req::Batch(_) => None,
        })
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .map(|r| event_id_of(*r))
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    assert!(stored.is_subset(&sent), "only events sent are stored");
    assert!(
        sent.len() < EVENTS,
        "the crash came mid-stream ({} events sent)",
        sent.len()
    );

    for (req, ack) in resend(api, streams, acked.clone()).await {
        assert_eq!(ack, json!({"ack": true, "event_id": event_id_of(req)}));
        assert_eq!(ack, log.acked[&req], "the same answer as the first time");
    }
    assert_eq!(
        all_events(api, &cookie).await,
        before,
        "the resends changed nothing"
    );

    let cut_off = log
        .unacked
        .iter()
        .filter(|r| matches!(r, Req::Event(_)))
        .copied()
        .collect();
    resend(api, streams, cut_off).await;
    assert_eq!(
        stored_once(&all_events(api, &cookie).await),
        sent,
        "each sent event once"
    );
}

fn event_id_of(req: Req) -> String {
    match req {
        Req::Event(n) => event_id(n),
        Req::Batch(_) => unreachable!("an event"),
    }
}

/// Each camera's entries, exits and occupancy, and the facility's.
async fn counts(api: &Platform, streams: &Streams) -> Vec<(i64, i64, i64)> {
    let mut counts = Vec::new();
    for (cam, _) in &streams.cameras {
        let live = api
            .get(
                &format!("/occupancy/api/occupancy/cameras/{cam}/live"),
                None,
            )
            .await;
        let l = live.ok();
        counts.push((
            l["total_entries"].as_i64().unwrap(),
            l["total_exits"].as_i64().unwrap(),
            l["current_occupancy"].as_i64().unwrap(),
        ));
    }
    // The facility's counters come from the change feed, which the restarted program
    // replays from its last checkpoint: wait until it has applied what was committed.
    api.server.settled().await;
    let f = api
        .get("/occupancy/api/occupancy/facility/live", None)
        .await;
    let f = f.ok();
    counts.push((
        f["total_entries_all_cameras"].as_i64().unwrap(),
        f["total_exits_all_cameras"].as_i64().unwrap(),
        f["facility_occupancy"].as_i64().unwrap(),
    ));
    counts
}

/// How many of the batches for camera `cam` were acknowledged, and how many sent.
fn batches(log: &Log, cam: usize) -> (i64, i64) {
    let of_cam = |r: &Req| matches!(r, Req::Batch(n) if n % CAMERAS == cam);
    let acked = log.acked.keys().filter(|r| of_cam(r)).count();
    (acked as i64, log.sent().filter(of_cam).count() as i64)
}

/// Every acknowledged batch is stored: sent again, each counts nothing (its tracked crossings
/// are known), and the counts stay; sending what was cut off counts each crossing once.
async fn crossings_survive(api: &Platform, streams: &Streams, log: &Log) {
    let before = counts(api, streams).await;
    let acked: Vec<Req> = log
        .acked
        .keys()
        .filter(|r| matches!(r, Req::Batch(_)))
        .copied()
        .collect();
    for req in &acked {
        assert_eq!(
            log.acked[req],
            json!({"accepted": 4}),
            "{req:?} counted when first sent"
        );
    }
    let batches: Vec<_> = (0..CAMERAS).map(|cam| batches(log, cam)).collect();
    for (cam, &(acked, sent)) in batches.iter().enumerate() {
        // What was cut off may or may not be stored; what was acknowledged is.
        let (entries, exits, _) = before[cam];
        assert!(
            (ENTRIES * acked..=ENTRIES * sent).contains(&entries),
            "camera {cam}: {entries} entries of {acked} acknowledged and {sent} sent batches"
        );
        assert!(
            (acked..=sent).contains(&exits),
            "camera {cam}: {exits} exits of {acked} acknowledged and {sent} sent batches"
        );
    }
    let sent: i64 = batches.iter().map(|b| b.1).sum();
    assert!(
        (sent as usize) < BATCHES,
        "the crash came mid-stream ({sent} batches sent)"
    );

    for (req, answer) in resend(api, streams, acked).await {
        assert_eq!(
            answer,
            json!({"accepted": 0}),
            "{req:?} again: every crossing already counted"
        );
    }
    assert_eq!(
        counts(api, streams).await,
        before,
        "the resends counted nothing"
    );

    let cut_off = log
        .unacked
        .iter()
        .filter(|r| matches!(r, Req::Batch(_)))
        .copied()
        .collect();
    resend(api, streams, cut_off).await;
    let after = counts(api, streams).await;
    for (cam, &(_, sent)) in batches.iter().enumerate() {
        assert_eq!(
            (after[cam].0, after[cam].1),
            (ENTRIES * sent, sent),
            "camera {cam}: each crossing once"
        );
    }
    assert_eq!(
        (after[CAMERAS].0, after[CAMERAS].1),
        (ENTRIES * sent, sent),
        "the facility"
    );
}
