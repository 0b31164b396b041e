//! MQTT topic names and filters (`+` one level, `#` the rest, as the last level).

/// Whether `topic` (a concrete name) matches `filter`. A filter with a misplaced wildcard
/// matches nothing; [`valid_filter`] says why.
pub fn matches(filter: &str, topic: &str) -> bool {
    if valid_filter(filter).is_err() {
        return false;
    }
    let (mut f, mut t) = (filter.split('/'), topic.split('/'));
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A filter is non-empty; `+` and `#` fill a whole level, and `#` only the last one.
pub fn valid_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("a topic filter cannot be empty".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let wild = level.contains(['+', '#']);
        if wild && level.len() != 1 {
            return Err(format!("wildcard inside level {level:?} of {filter:?}"));
        }
        if *level == "#" && i + 1 != levels.len() {
            return Err(format!("'#' must be the last level of {filter:?}"));
        }
    }
    Ok(())
}

/// Whether every topic that `requested` matches is one that `allowed` matches: a subscription
/// within a grant. Either filter being invalid covers nothing.
pub fn covers(allowed: &str, requested: &str) -> bool {
    if valid_filter(allowed).is_err() || valid_filter(requested).is_err() {
        return false;
    }
    let (mut a, mut r) = (allowed.split('/'), requested.split('/'));
    loop {
        match (a.next(), r.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(x), Some(y)) if x == y && !matches!(y, "+" | "#") => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether some topic matches both filters (so a subscription to one can receive what the
/// other names).
pub fn overlaps(a: &str, b: &str) -> bool {
    if valid_filter(a).is_err() || valid_filter(b).is_err() {
        return false;
    }
    let (mut a, mut b) = (a.split('/'), b.split('/'));
    loop {
        match (a.next(), b.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some(x), Some(y)) if x == y || x == "+" || y == "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The `n`th level (1-based) of a topic, as IoT SQL's `topic(n)`.
pub fn level(topic: &str, n: usize) -> Option<&str> {
    n.checked_sub(1).and_then(|i| topic.split('/').nth(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_levels() {
        assert!(matches(
            "ozone/devices/+/events",
            "ozone/devices/d-1/events"
        ));
        assert!(!matches(
            "ozone/devices/+/events",
            "ozone/devices/d-1/x/events"
        ));
        assert!(!matches("ozone/devices/+/events", "ozone/devices/events"));
        assert!(matches("ozone/#", "ozone/devices/d-1/events"));
        assert!(matches("ozone/#", "ozone"));
        assert!(matches("#", "anything/at/all"));
        assert!(matches("a/+", "a/"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
    }

    #[test]
    fn misplaced_wildcards_are_invalid_and_match_nothing() {
        for bad in ["", "a/#/b", "a/b+", "a#", "a/+x/c"] {
            assert!(valid_filter(bad).is_err(), "{bad:?}");
            assert!(!matches(bad, "a/b/c"));
        }
        assert!(valid_filter("a/+/#").is_ok());
    }

    #[test]
    fn a_grant_covers_only_filters_within_it() {
        let yes = [
            ("a/#", "a/#"),
            ("a/#", "a/b/+"),
            ("a/#", "a"),
            ("a/+/c", "a/b/c"),
            ("a/+/c", "a/+/c"),
            ("#", "+/x/#"),
        ];
        for (allowed, requested) in yes {
            assert!(covers(allowed, requested), "{allowed} covers {requested}");
        }
        let no = [
            ("a/#", "#"),
            ("a/#", "+/b"),
            ("a/+/c", "a/#"),
            ("a/+/c", "a/b/+"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("a/#", "a/#/x"),
        ];
        for (allowed, requested) in no {
            assert!(
                !covers(allowed, requested),
                "{allowed} must not cover {requested}"
            );
        }
    }

    #[test]
    fn filters_overlap_when_one_topic_matches_both() {
        for (a, b) in [
            ("#", "+/live/#"),
            ("x/+", "+/live"),
            ("x/live/y", "+/live/#"),
        ] {
            assert!(overlaps(a, b) && overlaps(b, a), "{a} ~ {b}");
        }
        for (a, b) in [("x/y/#", "+/live/#"), ("x", "+/live/#"), ("a/b", "a/c")] {
            assert!(!overlaps(a, b) && !overlaps(b, a), "{a} !~ {b}");
        }
    }

    #[test]
    fn levels_are_one_based() {
        assert_eq!(level("streetlight/lights/L1/status", 3), Some("L1"));
        assert_eq!(level("streetlight/lights/L1/status", 0), None);
        assert_eq!(level("streetlight/lights/L1/status", 5), None);
    }
}
