//! UTC timestamps and short durations, without a calendar library: the client
//! only ever prints UTC and parses one ISO-8601 field, so a few lines of civil
//! date arithmetic keep the binary small.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now. A clock before 1970 reads as 0.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Broken-down UTC time: `(year, month, day, hour, minute, second)`.
fn split(ts: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (y, mo, d) = civil_from_days(ts.div_euclid(86_400));
    let secs = ts.rem_euclid(86_400);
    (y, mo, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// RFC 3339 in UTC, e.g. `2026-11-23T18:00:00Z`: the form used in `--json`.
pub fn rfc3339(ts: i64) -> String {
    let (y, mo, d, h, mi, s) = split(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Minute precision for people, e.g. `2026-11-23 18:00 UTC`.
pub fn human(ts: i64) -> String {
    let (y, mo, d, h, mi, _) = split(ts);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
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

/// Parses an ISO-8601 date-time with an explicit offset, as Python's
/// `datetime.isoformat()` writes it: `2026-11-23T18:00:00+00:00`,
/// `2026-11-23 18:00:00.123456Z`, `...+0100`. A time without an offset is
/// ambiguous (it could be local time), so it yields `None`.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let sep = |i: usize, c: u8| (b[i] == c).then_some(());
    sep(4, b'-')?;
    sep(7, b'-')?;
    sep(13, b':')?;
    sep(16, b':')?;
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hhmm = rest[1..].replace(':', "");
            if hhmm.len() != 4 || !hhmm.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (oh, om): (i64, i64) = (hhmm[..2].parse().ok()?, hhmm[2..].parse().ok()?);
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
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
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
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

    #[test]
    fn parses_python_isoformat() {
        let t = 1_795_456_800;
        assert_eq!(parse_iso8601("2026-11-23T18:00:00+00:00"), Some(t));
        assert_eq!(parse_iso8601("2026-11-23 18:00:00Z"), Some(t));
        assert_eq!(parse_iso8601("2026-11-23T18:00:00.123456+00:00"), Some(t));
        assert_eq!(parse_iso8601("2026-11-23T19:30:00+01:30"), Some(t));
        assert_eq!(parse_iso8601("2026-11-23T12:00:00-0600"), Some(t));
    }

    #[test]
    fn rejects_ambiguous_or_malformed_times() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T18:00:00",
            "2026-13-23T18:00:00Z",
            "2026-11-23T18:00:00+1",
            "2026-11-23T18:00:00.Z",
            "2026/11/23T18:00:00Z",
            "2026-11-23T18:00:00Zjunk",
            "２０２６-11-23T18:00:00Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }
}
