//! Delivery: acknowledged means stored, across a crash; what cannot be stored is kept at the
//! rule's error action before the device gets its PUBACK.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine as _;
use civic_testkit::local::LocalServer;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::device::mqtt_options;
use crate::{BIN, Platform, eventually, ozone_event};

fn event_ids(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The event number of each PUBACK, as it arrives: the test waits on them one by one.
/// rumqttc sends in publish order; the n-th outgoing packet id is the n-th event.
fn pubacks_by_event(mut events: EventLoop) -> mpsc::UnboundedReceiver<usize> {
    let (tx, acks) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut sent, mut pending) = (0usize, HashMap::new());
        while let Ok(ev) = events.poll().await {
            match ev {
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    pending.insert(pkid, sent);
                    sent += 1;
                }
                Event::Incoming(Packet::PubAck(ack)) => {
                    let n = pending
                        .remove(&ack.pkid)
                        .expect("a PUBACK for a sent packet");
                    let _ = tx.send(n);
                }
                _ => {}
            }
        }
    });
    acks
}

/// Acknowledged means stored: the moment a device holds its PUBACK, the event is readable, and
/// a crash (SIGKILL) of civic-local right after loses none of the acknowledged events.
#[tokio::test]
async fn acknowledged_messages_are_stored_and_survive_a_crash() {
    let api = Platform::start().await;
    let (cookie, dev_a) = api.ozone().await;
    let mut opts = mqtt_options(&api.broker().await, &dev_a);
    opts.set_inflight(100);
    let (client, events) = AsyncClient::new(opts, 1000);
    let mut acks = pubacks_by_event(events);
    let topic = "ozone/devices/dev-a/events";

    each_puback_means_stored(&api, &cookie, &client, &mut acks, topic).await;

    // A burst, with up to 100 messages in flight, and a crash in the middle of it.
    const BURST: usize = 1_000;
    for n in 5..BURST {
        client
            .publish(topic, QoS::AtLeastOnce, false, ozone_event(n).to_string())
            .await
            .unwrap();
    }
    let mut acked: BTreeSet<String> = (0..5).map(|n| format!("crash-{n:05}")).collect();
    while acked.len() < 200 {
        let n = tokio::time::timeout(Duration::from_secs(30), acks.recv())
            .await
            .expect("PUBACKs keep coming")
            .unwrap();
        acked.insert(format!("crash-{n:05}"));
    }
    let Platform { server, http } = api;
    let dir = server.crash().await.expect("the data dir");
    // What else was acknowledged before the process died.
    while let Ok(n) = acks.try_recv() {
        acked.insert(format!("crash-{n:05}"));
    }
    let api = Platform {
        server: LocalServer::start_in(BIN, dir.path(), &[], &[]).await,
        http,
    };
    let cookie = api.ozone_session().await;
    let stored = event_ids(&api.ozone_events(&cookie, "dev-a").await);
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    assert!(
        stored.len() < BURST,
        "the crash came mid-burst ({} stored)",
        stored.len()
    );
}

/// One at a time: each PUBACK means the event is already in the API, with no waiting.
async fn each_puback_means_stored(
    api: &Platform,
    cookie: &str,
    client: &AsyncClient,
    acks: &mut mpsc::UnboundedReceiver<usize>,
    topic: &str,
) {
    for n in 0..5 {
        client
            .publish(topic, QoS::AtLeastOnce, false, ozone_event(n).to_string())
            .await
            .unwrap();
        let acked = tokio::time::timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("a PUBACK within 10 s")
            .unwrap();
        assert_eq!(acked, n);
        let stored = event_ids(&api.ozone_events(cookie, "dev-a").await);
        assert!(
            stored.contains(&format!("crash-{n:05}")),
            "acked but not stored: {n}"
        );
        assert_eq!(stored.len(), n + 1);
    }
}

/// What a rule's consumer cannot store is kept at the rule's error action (as IoT Core's error
/// action would write it) before the device gets its PUBACK.
#[tokio::test]
async fn unstored_messages_are_kept_at_the_error_action() {
    let api = Platform::start().await;
    let (_, dev_a) = api.ozone().await;
    let device = api.device(&dev_a).await;
    device
        .publish("ozone/devices/dev-a/events", "not json")
        .await;
    let mut gold = ozone_event(1);
    gold["treatment"] = json!("GOLD");
    device
        .send("ozone/devices/dev-a/events", gold.clone())
        .await;
    device
        .send("ozone/devices/dev-a/events", ozone_event(2))
        .await;
    eventually("three messages handled", || async {
        let iot = api.iot().await;
        (iot["stats"]["malformed"] == 1 && api.count("OzoneEventsRule", "stored").await == 1)
            .then_some(())
    })
    .await;
    assert_eq!(api.count("OzoneEventsRule", "rejected").await, 1);
    assert_eq!(api.count("OzoneEventsRule", "kept").await, 2);

    let dir = api.server.data_dir.join("blobs/objects/iot-errors/ozone");
    let mut records: Vec<Value> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            // The first line is the content type.
            let (kind, body) = text.split_once('\n').unwrap();
            assert_eq!(kind, "application/json");
            serde_json::from_str(body).unwrap()
        })
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    let payload = |r: &Value| {
        let b64 = r["base64OriginalPayload"].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    records.sort_by_key(|r| payload(r) != "not json");
    let (garbled, unknown) = (&records[0], &records[1]);
    assert_eq!(garbled["ruleName"], "OzoneEventsRule");
    assert_eq!(garbled["topic"], "ozone/devices/dev-a/events");
    assert_eq!(
        garbled["clientId"], "ozone-dev-a",
        "the device port knows who published"
    );
    assert_eq!(payload(garbled), "not json");
    let failure = &garbled["failures"][0];
    assert_eq!(failure["failedResource"], "ozone-iot");
    assert_eq!(failure["errorMessage"], "the payload is not JSON");
    assert_eq!(unknown["topic"], "ozone/devices/dev-a/events");
    assert_eq!(
        serde_json::from_str::<Value>(&payload(unknown)).unwrap(),
        gold
    );
    let why = unknown["failures"][0]["errorMessage"].as_str().unwrap();
    assert!(why.starts_with("rejected: "), "{why}");
}
