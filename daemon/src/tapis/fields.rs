//! Lenient readings of answer fields whose type Tapis does not keep to.

use crate::jwt;
use serde_json::Value;

/// Seconds from `now` until the time `value` names: a number of seconds (a
/// JSON number or a string of digits), an HTTP-date (`Wed, 24 Jan 2024
/// 15:27:53 GMT`, what the Authenticator's device-code `expires_in` is: a
/// `datetime` rendered by Flask), or an RFC 3339 / ISO-8601 time (without an
/// offset read as UTC, as Python's naive `utcnow()` values are). `None` when
/// it is none of these; a time already past gives 0.
pub fn seconds_until(value: &Value, now: i64) -> Option<u64> {
    if let Some(secs) = jwt::seconds(value) {
        return Some(u64::try_from(secs).unwrap_or(0));
    }
    let text = value.as_str()?.trim();
    let at = instant(text)?;
    Some(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}

/// Unix seconds of an HTTP-date or an RFC 3339 / ISO-8601 time.
fn instant(text: &str) -> Option<i64> {
    if let Ok(t) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(text) {
        return Some(t.as_second());
    }
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t.as_second());
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_706_109_473; // 2024-01-24T15:17:53Z

    #[test]
    fn seconds_or_any_date_form() {
        assert_eq!(seconds_until(&json!(600), NOW), Some(600));
        assert_eq!(seconds_until(&json!(599.9), NOW), Some(599));
        assert_eq!(seconds_until(&json!("600"), NOW), Some(600));
        for date in [
            "Wed, 24 Jan 2024 15:27:53 GMT",
            "2024-01-24T15:27:53Z",
            "2024-01-24T15:27:53.123456+00:00",
            "2024-01-24T16:27:53+01:00",
            "2024-01-24T15:27:53.5",
        ] {
            assert_eq!(seconds_until(&json!(date), NOW), Some(600), "{date}");
        }
    }

    #[test]
    fn past_odd_and_missing_values() {
        assert_eq!(
            seconds_until(&json!("Wed, 24 Jan 2024 15:07:53 GMT"), NOW),
            Some(0)
        );
        assert_eq!(seconds_until(&json!(-5), NOW), Some(0));
        for odd in [json!("soon"), json!(true), json!(null), json!({"s": 1})] {
            assert_eq!(seconds_until(&odd, NOW), None, "{odd}");
        }
    }
}
