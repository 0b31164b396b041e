use serde_json::{Value, json};

use super::{Context, Rule};

fn ctx(topic: &str) -> Context<'_> {
    Context {
        topic,
        client_id: Some("sim-1"),
        timestamp_ms: 1_700_000_000_000,
    }
}

fn run(sql: &str, topic: &str, payload: Value) -> Option<Value> {
    Rule::parse(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .apply(&payload, &ctx(topic))
}

#[test]
fn star_with_topic_levels_and_aliases() {
    let out = run(
        "SELECT *, topic(3) AS device_id, timestamp() AS received, clientid() FROM 'ozone/devices/+/events'",
        "ozone/devices/d-1/events",
        json!({"event_id": "e1", "device_id": "spoofed"}),
    );
    assert_eq!(
        out,
        Some(
            json!({"event_id": "e1", "device_id": "d-1", "received": 1_700_000_000_000_i64, "clientid": "sim-1"})
        )
    );
}

#[test]
fn fields_nested_paths_and_missing_fields_are_left_out() {
    let out = run(
        "select status, a.b.c as deep, nope, topic() from 'x/#'",
        "x/y",
        json!({"status": "on", "a": {"b": {"c": 3}}}),
    );
    assert_eq!(
        out,
        Some(json!({"status": "on", "deep": 3, "topic": "x/y"}))
    );
    // `SELECT *` alone passes any JSON on untouched.
    assert_eq!(
        run("SELECT * FROM 'x'", "x", json!([1, 2])),
        Some(json!([1, 2]))
    );
}

#[test]
fn from_must_match_the_topic() {
    let sql = "SELECT * FROM 'streetlight/lights/+/status'";
    assert!(run(sql, "streetlight/lights/L1/status", json!({})).is_some());
    assert!(run(sql, "streetlight/lights/L1/command", json!({})).is_none());
}

#[test]
fn where_compares_with_three_valued_logic() {
    let sql = "SELECT * FROM 't' WHERE temp > 20 AND NOT (mode = 'off' OR mode <> 'auto')";
    assert!(run(sql, "t", json!({"temp": 21.5, "mode": "auto"})).is_some());
    assert!(run(sql, "t", json!({"temp": 20, "mode": "auto"})).is_none());
    assert!(run(sql, "t", json!({"temp": 25, "mode": "off"})).is_none());
    // A missing field is undefined: the comparison is neither true nor false...
    assert!(run("SELECT * FROM 't' WHERE temp > 20", "t", json!({})).is_none());
    assert!(run("SELECT * FROM 't' WHERE NOT temp > 20", "t", json!({})).is_none());
    // ...but OR with a true side is true, and AND with a false side is false.
    assert!(run("SELECT * FROM 't' WHERE temp > 20 OR 1 = 1", "t", json!({})).is_some());
    assert!(
        run(
            "SELECT * FROM 't' WHERE NOT (temp > 20 AND 1 = 2)",
            "t",
            json!({})
        )
        .is_some()
    );
    // Different types never compare; integers and floats do.
    assert!(run("SELECT * FROM 't' WHERE n = '1'", "t", json!({"n": 1})).is_none());
    assert!(run("SELECT * FROM 't' WHERE n = 1.0", "t", json!({"n": 1})).is_some());
    assert!(run("SELECT * FROM 't' WHERE n <= -2", "t", json!({"n": -3})).is_some());
    assert!(run("SELECT * FROM 't' WHERE ok", "t", json!({"ok": true})).is_some());
    assert!(run("SELECT * FROM 't' WHERE ok", "t", json!({"ok": "yes"})).is_none());
    assert!(
        run(
            "SELECT * FROM 't' WHERE topic(1) = 't' AND s != 'it''s'",
            "t",
            json!({"s": "x"})
        )
        .is_some()
    );
    assert!(
        run(
            "SELECT * FROM 't' WHERE o = o",
            "t",
            json!({"o": {"a": [1]}})
        )
        .is_some()
    );
    assert!(
        run(
            "SELECT * FROM 't' WHERE o < o",
            "t",
            json!({"o": {"a": [1]}})
        )
        .is_none()
    );
}

#[test]
fn unsupported_sql_is_refused_with_its_position() {
    for (sql, pos, words) in [
        (
            "SELECT upper(name) FROM 't'",
            8,
            "function upper() is not supported",
        ),
        ("SELECT a + 1 FROM 't'", 10, "'+' is not supported"),
        ("SELECT * FROM t", 15, "FROM takes a quoted topic filter"),
        ("SELECT * FROM 'a/#/b'", 15, "'#' must be the last level"),
        (
            "SELECT * FROM 't' WHERE a IN (1)",
            27,
            "unsupported SQL after the statement",
        ),
        (
            "SELECT CASE WHEN a THEN 1 END FROM 't'",
            8,
            "CASE is not supported here",
        ),
        (
            "SELECT * FROM 't' WHERE a = 1 = 2",
            31,
            "chained comparisons",
        ),
        ("SELECT * FROM 't' WHERE", 24, "expected a value"),
        ("SELECT \"a\" FROM 't'", 8, "quoted names are not supported"),
        ("SELECT topic(0) FROM 't'", 14, "positive whole number"),
        ("SELECT timestamp(1) FROM 't'", 18, "takes no argument"),
        ("SELECT * FROM 't", 15, "unterminated string"),
        ("SELECT * AS x FROM 't'", 10, "expected FROM"),
        ("DELETE FROM 't'", 1, "expected SELECT"),
        ("SELECT * FROM 't' ORDER BY a", 19, "unsupported SQL after"),
    ] {
        let e = Rule::parse(sql).expect_err(sql);
        assert!(e.msg.contains(words), "{sql}: {e}");
        assert_eq!(e.pos, pos, "{sql}: {e}");
    }
}

/// The fuzz target's property, as a seeded loop that runs in every test run: statements built
/// from SQL fragments (valid and not) never panic the parser, and whatever parses evaluates
/// without panicking on arbitrary payloads and topics. `fuzz/` runs the same with libFuzzer.
#[test]
fn random_statements_never_panic() {
    use rand::{Rng, SeedableRng};
    const PARTS: &[&str] = &[
        "SELECT",
        "FROM",
        "WHERE",
        "AS",
        "AND",
        "OR",
        "NOT",
        "*",
        ",",
        ".",
        "(",
        ")",
        "=",
        "<>",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "!",
        "'a/+/c'",
        "'#'",
        "'x'",
        "''",
        "'",
        "topic(",
        "topic(3)",
        "timestamp()",
        "clientid()",
        "upper(",
        "1",
        "-2.5",
        "1e999",
        "18446744073709551616",
        "a",
        "a.b",
        "é",
        "\u{0}",
        " ",
        "null",
        "true",
        "CASE",
        "\"",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let payloads = [
        json!({"a": {"b": 1}, "x": "y"}),
        json!([1, 2]),
        json!(null),
        json!("s"),
    ];
    let mut parsed = 0;
    for _ in 0..20_000 {
        let n = rng.random_range(1..14);
        let mut sql = String::from(if rng.random_bool(0.8) { "SELECT " } else { "" });
        for _ in 0..n {
            sql.push_str(PARTS[rng.random_range(0..PARTS.len())]);
            sql.push(' ');
        }
        if rng.random_bool(0.7) {
            sql.push_str("FROM 'a/+/c' WHERE a.b = 1");
        }
        if let Ok(rule) = Rule::parse(&sql) {
            parsed += 1;
            for p in &payloads {
                let _ = rule.apply(p, &ctx("a/b/c"));
                let _ = rule.apply(p, &ctx(""));
            }
        }
    }
    assert!(
        parsed > 100,
        "the generator should reach valid statements: {parsed}"
    );
}
