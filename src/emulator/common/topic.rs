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

/// Local pub/sub matching, as the nucleus' subscription trie does it
/// (`SubscriptionTrie.get` in aws-greengrass-nucleus): `+` is one level; a `#` level also
/// stands for exactly one level, except a final `#`, which takes one or more levels. So
/// unlike MQTT, `a/#` does not match `a`.
pub(crate) fn local_filter_matches(filter: &str, topic: &str) -> bool {
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.split_first(), t.split_first()) {
            (None, None) => true,
            (Some((&"#", [])), Some(_)) => true,
            (Some((&level, f_rest)), Some((&topic_level, t_rest))) => {
                (level == "+" || level == "#" || level == topic_level) && go(f_rest, t_rest)
            }
            _ => false,
        }
    }
    go(&java_split(filter), &java_split(topic))
}

/// `s.split("/")` as Java does it: trailing empty levels are dropped (`"a/b/"` is
/// `["a", "b"]`, `"/"` is `[]`), except that `""` is `[""]`.
pub(crate) fn java_split(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut levels: Vec<&str> = s.split('/').collect();
    while levels.last() == Some(&"") {
        levels.pop();
    }
    levels
}

/// Whether a local filter is a wildcard for the receive-mode default: a whole `+` level or
/// a final `#` level (`SubscriptionTrie.isWildcard` in aws-greengrass-nucleus).
pub(crate) fn is_local_wildcard(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    levels
        .iter()
        .enumerate()
        .any(|(i, l)| *l == "+" || (*l == "#" && i == levels.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::{filter_matches, is_local_wildcard, local_filter_matches};

    #[test]
    fn local_filters_match_like_the_nucleus_trie() {
        let cases = [
            ("a/#", "a", false),
            ("a/#", "a/b", true),
            ("a/#", "a/b/c", true),
            ("#", "x", true),
            ("a/#/c", "a/x/c", true),
            ("a/#/c", "a/x/y/c", false),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/b", "a/b", true),
            // Java's split drops trailing empty levels.
            ("a/b", "a/b/", true),
            ("a/b/", "a/b", true),
            ("a/+", "a/b//", true),
            ("a//b", "a/b", false),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(
                local_filter_matches(filter, topic),
                expected,
                "{filter} vs {topic}"
            );
        }
        assert!(is_local_wildcard("a/+/c") && is_local_wildcard("a/#"));
        assert!(
            !is_local_wildcard("a/#/c") && !is_local_wildcard("a+") && !is_local_wildcard("a/b#")
        );
    }

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
