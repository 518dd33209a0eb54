//! The time the agent goes by, in Unix seconds or milliseconds (token
//! expiry is wall-clock time).
//!
//! A [`Clock`] is the system clock, unless a test made a [`TestClock`]: the
//! same wall clock moved ahead by what the test asked, so that a token ages
//! an hour in a millisecond. Token expiry, refresh times and their shared
//! retry pauses, and the cache's ages are all read from the config's clock;
//! the fake Tapis of the tests reads the same one when it runs in the same
//! process. Tokio timers (timeouts, backoff, polls) stay on real time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The wall clock, or a test's clock that it moves ahead.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<TestClock>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Now, Unix milliseconds: expiry checks that must not lose most of a
    /// second to rounding.
    pub fn now_ms(&self) -> i64 {
        system_ms() + self.0.as_ref().map_or(0, |t| *t.0.borrow())
    }

    /// Wakes whoever waits on it when this clock is moved (never for the
    /// system clock). Take it before reading the time: a move after that
    /// wakes it.
    pub fn moves(&self) -> Moves {
        Moves(self.0.as_ref().map(|t| t.0.subscribe()))
    }
}

/// See [`Clock::moves`].
#[derive(Debug)]
pub struct Moves(Option<watch::Receiver<i64>>);

impl Moves {
    /// Returns once the clock has moved since this was taken (or since the
    /// last return); never for the system clock.
    pub async fn moved(&mut self) {
        if let Some(rx) = &mut self.0
            && rx.changed().await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}

/// A clock for tests: the wall clock plus an offset the test moves ahead.
/// Every [`Clock`] made from it reads the same time.
#[derive(Clone, Debug)]
pub struct TestClock(Arc<watch::Sender<i64>>);

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl TestClock {
    /// The wall clock, not moved yet.
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }

    /// A [`Clock`] that reads this clock.
    pub fn clock(&self) -> Clock {
        Clock(Some(self.clone()))
    }

    /// Moves the time ahead by `by`, and wakes what waits on the time (the
    /// token refresher).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0
            .send_modify(|ahead| *ahead = ahead.saturating_add(ms));
    }

    /// Now, Unix seconds, on this clock.
    pub fn now(&self) -> i64 {
        self.clock().now()
    }

    /// Now, Unix milliseconds, on this clock.
    pub fn now_ms(&self) -> i64 {
        self.clock().now_ms()
    }
}

fn system_ms() -> i64 {
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

    #[tokio::test]
    async fn a_test_clock_moves_ahead_and_says_so() {
        let test = TestClock::new();
        let (clock, system) = (test.clock(), Clock::system());
        let mut moves = clock.moves();
        assert!((clock.now() - system.now()).abs() <= 1);
        test.advance(Duration::from_secs(3600));
        tokio::time::timeout(Duration::from_secs(5), moves.moved())
            .await
            .expect("woken by the move");
        let ahead = clock.now() - system.now();
        assert!((3599..=3601).contains(&ahead), "{ahead}");
        assert_eq!(test.now(), clock.now());
        // The system clock never moves.
        let mut never = system.moves();
        let woken = tokio::time::timeout(Duration::from_millis(20), never.moved()).await;
        assert!(woken.is_err());
    }
}
