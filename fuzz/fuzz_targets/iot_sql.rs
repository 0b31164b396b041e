//! The IoT SQL subset and topic filters on arbitrary input: parsing never panics, and what
//! parses evaluates without panicking on any payload and topic. Input: `sql \0 topic \0 json`.
#![no_main]

use civic_iot::{Context, Rule, topic};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let (sql, name, payload) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("a/b/c"),
        parts.next().unwrap_or("{}"),
    );
    let _ = topic::matches(sql, name);
    let _ = topic::valid_filter(sql);
    if let Ok(rule) = Rule::parse(sql) {
        let payload: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        let ctx = Context {
            topic: name,
            client_id: Some("fuzz"),
            timestamp_ms: 0,
        };
        let _ = rule.apply(&payload, &ctx);
    }
});
