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
