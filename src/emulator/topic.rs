//! Topic filters of local pub/sub (MQTT-style `+` and `#`).

/// Whether `filter` (which may hold `+` for one level and a final `#` for any number of
/// levels, including none) matches the concrete `topic`.
pub(crate) fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
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

/// Whether a topic string holds a wildcard (`+` or `#`) level or character.
pub(crate) fn has_wildcard(topic: &str) -> bool {
    topic.contains(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::filter_matches;

    #[test]
    fn filters_match_like_mqtt() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/+/c", "a/x/c", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "anything/at/all", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("+", "", true),
            ("a//b", "a//b", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(
                filter_matches(filter, topic),
                expected,
                "{filter} vs {topic}"
            );
        }
    }
}
