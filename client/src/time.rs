//! UTC timestamps and short durations, as the client prints them. Dates go
//! through jiff, the calendar the agent and `proto::tokenfile` use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now. A clock before 1970 reads as 0.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `ts` in UTC as `format` (strftime) gives it; a time outside what a
/// calendar can show reads as the seconds themselves.
fn utc(ts: i64, format: &str) -> String {
    jiff::Timestamp::from_second(ts)
        .map_or_else(|_| ts.to_string(), |t| t.strftime(format).to_string())
}

/// RFC 3339 in UTC, e.g. `2026-11-23T18:00:00Z`: the form used in `--json`.
pub fn rfc3339(ts: i64) -> String {
    utc(ts, "%Y-%m-%dT%H:%M:%SZ")
}

/// Minute precision for people, e.g. `2026-11-23 18:00 UTC`.
pub fn human(ts: i64) -> String {
    utc(ts, "%Y-%m-%d %H:%M UTC")
}

/// A duration in its two largest units, e.g. `42 s`, `5 min`, `3 h 12 min`, `2 d 4 h`.
pub fn span(secs: u64) -> String {
    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    match secs {
        s if s < MIN => format!("{s} s"),
        s if s < HOUR => format!("{} min", s / MIN),
        s if s < DAY => match s % HOUR / MIN {
            0 => format!("{} h", s / HOUR),
            m => format!("{} h {m} min", s / HOUR),
        },
        s => match s % DAY / HOUR {
            0 => format!("{} d", s / DAY),
            h => format!("{} d {h} h", s / DAY),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_456_800), "2026-11-23T18:00:00Z");
        assert_eq!(human(1_795_456_800), "2026-11-23 18:00 UTC");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn spans_use_two_units() {
        assert_eq!(span(0), "0 s");
        assert_eq!(span(42), "42 s");
        assert_eq!(span(300), "5 min");
        assert_eq!(span(3 * 3600), "3 h");
        assert_eq!(span(3 * 3600 + 12 * 60 + 5), "3 h 12 min");
        assert_eq!(span(2 * 86_400 + 4 * 3600), "2 d 4 h");
        assert_eq!(span(86_400), "1 d");
    }
}
