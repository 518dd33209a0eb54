"""The plugin benchmark runs and reports every figure (its target is a
reported figure, BENCHMARKS.md, not a timed assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import WAIT


def test_the_benchmark_runs() -> None:
    script = Path(__file__).with_name("bench_plugin.py")
    done = subprocess.run(
        [sys.executable, str(script), "--iterations", "50", "--json"],
        capture_output=True,
        text=True,
        timeout=4 * WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["iterations"] == 50
    for key in ("plugin_median_us", "fixed_median_us", "added_median_us", "hook_us"):
        assert isinstance(figures[key], float)
    assert figures["plugin_median_us"] > 0 and figures["hook_us"] > 0
    # No call to the agent per request: the whole point of the plugin.
    assert figures["agent_calls_during_run"] == 0
