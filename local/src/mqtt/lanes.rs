//! Ordering for the rule engine: messages of one topic (one device) are handled one after
//! another, different topics concurrently, and each message is released (acknowledged, or
//! passed on to the broker) only once it and every message before it are done. MQTT 3.1.1
//! wants acknowledgements in the order the messages came.

use std::collections::HashMap;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use futures::stream::{FuturesOrdered, StreamExt};

/// A message's handling: `true` once it is stored or kept, `false` if it could be neither.
pub type Work = BoxFuture<'static, bool>;

type Done = Shared<Work>;

pub struct Lanes<T> {
    /// The last work queued per topic.
    tails: HashMap<String, Done>,
    pending: FuturesOrdered<BoxFuture<'static, (Option<String>, T, bool)>>,
}

impl<T: Send + 'static> Default for Lanes<T> {
    fn default() -> Self {
        Self {
            tails: HashMap::new(),
            pending: FuturesOrdered::new(),
        }
    }
}

impl<T: Send + 'static> Lanes<T> {
    /// Queues `item`; with a topic, `work` starts after the topic's earlier work finished.
    /// Without one the item only keeps its place in line.
    pub fn push(&mut self, topic: Option<String>, work: Work, item: T) {
        let Some(topic) = topic else {
            self.pending
                .push_back(work.map(move |ok| (None, item, ok)).boxed());
            return;
        };
        let before = self.tails.remove(&topic);
        let done: Done = async move {
            if let Some(before) = before {
                before.await;
            }
            work.await
        }
        .boxed()
        .shared();
        self.tails.insert(topic.clone(), done.clone());
        self.pending
            .push_back(done.map(move |ok| (Some(topic), item, ok)).boxed());
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// The next item in arrival order once its work is done, with the work's outcome.
    pub async fn next(&mut self) -> Option<(T, bool)> {
        let (topic, item, ok) = self.pending.next().await?;
        // A finished tail has nothing left to wait for: forget the topic.
        if let Some(topic) = topic
            && self.tails.get(&topic).is_some_and(|d| d.peek().is_some())
        {
            self.tails.remove(&topic);
        }
        Some((item, ok))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    fn work(log: &Arc<Mutex<Vec<String>>>, name: &str, ms: u64) -> Work {
        let (log, name) = (log.clone(), name.to_owned());
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            log.lock().unwrap().push(name);
            true
        }
        .boxed()
    }

    #[tokio::test]
    async fn one_topic_in_order_topics_concurrently_released_in_arrival_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lanes = Lanes::default();
        let a = || Some("a".to_owned());
        lanes.push(a(), work(&log, "a1", 60), "a1");
        lanes.push(a(), work(&log, "a2", 1), "a2");
        lanes.push(Some("b".into()), work(&log, "b1", 1), "b1");
        lanes.push(None, async { true }.boxed(), "ping");
        let mut out = Vec::new();
        while let Some((item, ok)) = lanes.next().await {
            assert!(ok);
            out.push(item);
        }
        // b1 ran while a1 slept, a2 only after a1; the release order is the arrival order.
        assert_eq!(*log.lock().unwrap(), ["b1", "a1", "a2"]);
        assert_eq!(out, ["a1", "a2", "b1", "ping"]);
        assert!(lanes.tails.is_empty(), "finished topics are forgotten");
    }
}
