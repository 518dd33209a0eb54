//! Keeps the benchmark code alive: every figure of `bench` with a handful of
//! runs (debug build; the figures themselves mean nothing here).

use tapis_agent_tests::bench::{self, Options, Plan, bins::Bins, report, seed::PythonSource};

#[test]
fn every_figure_runs_with_tiny_counts() {
    let bins = Bins::beside_current_exe().expect("binaries dir");
    let results = bench::run(&Options {
        plan: Plan::smoke(),
        bins,
        python: PythonSource::Off,
        command: "bench_smoke".into(),
    })
    .expect("the smoke plan runs");

    assert_eq!(results.process.dynamic.establish.runs, 2);
    assert!(results.process.seed.is_none());
    assert_eq!(
        results.process.agent_upstream_calls, 0,
        "warm runs stay local"
    );
    assert_eq!(results.throughput.len(), 2);
    assert!(results.throughput.iter().all(|l| l.requests > 0));
    // Coalescing is the one figure with an exact expected value.
    let c = &results.coalescing;
    assert_eq!(c.one_system.per_system(), "1/1/1", "{:?}", c.one_system);
    assert_eq!(c.many_systems.per_system(), "1/1/1", "{:?}", c.many_systems);
    assert_eq!(results.cold.agent_calls_per_run, 3.0);
    assert!(results.memory.idle.rss > 0 && results.memory.cached.anon > 0);
    assert_eq!(results.sizes.len(), 3);

    let md = report::markdown(&results);
    for heading in [
        "### 1.", "### 2.", "### 3.", "### 4.", "### 5.", "### 6.", "### 7.",
    ] {
        assert!(md.contains(heading), "{heading} missing from\n{md}");
    }
    serde_json::to_string(&results).expect("results serialize");
}
