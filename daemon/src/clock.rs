//! Wall-clock time in Unix seconds (token expiry is wall-clock time).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now, Unix milliseconds: expiry checks that must not lose most of a
/// second to rounding.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `45 s`, `12 min`, `3 h 5 min`: a duration in words for messages.
pub fn duration_words(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// `in 12 min`, or `now` for a time already past.
pub fn in_words(secs: i64) -> String {
    if secs <= 0 {
        "now".to_owned()
    } else {
        format!("in {}", duration_words(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_words() {
        assert_eq!(duration_words(-3), "0 s");
        assert_eq!(duration_words(59), "59 s");
        assert_eq!(duration_words(600), "10 min");
        assert_eq!(duration_words(3 * 3600 + 5 * 60 + 9), "3 h 5 min");
        assert_eq!(in_words(0), "now");
        assert_eq!(in_words(90), "in 90 s");
    }
}
