//! Fake Tapis server and test harness.
