"""What the tapipy plugin adds to a request: the same tapipy call with the
plugin and with a fixed token, interleaved in one run against the fake Tapis.

    target/python-venv-3.13/bin/python python/tests/bench_plugin.py [--iterations N] [--json]

Needs the package installed in that venv and target/debug/fake-tapis (bash
scripts/test.sh provides both). Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import PASSWORD, SCRUBBED, USER, running

#: The added cost the plugin is meant to stay under, in microseconds.
TARGET_US = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(iterations: int) -> dict[str, Any]:
    with running() as (fake, _agent, env):
        for var in SCRUBBED:
            os.environ.pop(var, None)
        os.environ.update(env)
        from tapipy.tapis import Tapis

        import tapis_agent

        tapis_agent.login(USER, PASSWORD)
        fixed = Tapis(base_url=fake.base_url, access_token=tapis_agent.token(min_valid=3600).access_token)
        plugged = Tapis(base_url=fake.base_url, plugins=["tapis_agent.tapipy"])
        fetches_before = plugged.tapis_agent_keeper.fetches

        def timed(t: Any) -> float:
            start = time.perf_counter()
            t.systems.getSystem(systemId="stampede3")
            return (time.perf_counter() - start) * 1e6

        for _ in range(min(200, iterations)):
            timed(fixed)
            timed(plugged)
        with_plugin: list[float] = []
        with_fixed: list[float] = []
        for i in range(iterations):
            # Alternate which goes first so that neither always runs warm.
            order: list[tuple[Any, list[float]]] = [(plugged, with_plugin), (fixed, with_fixed)]
            for t, out in order if i % 2 == 0 else reversed(order):
                out.append(timed(t))
        assert len(with_plugin) == len(with_fixed)
        diffs = [p - f for p, f in zip(with_plugin, with_fixed)]
        hook = hook_cost(plugged)
        return {
            "iterations": iterations,
            "plugin_median_us": statistics.median(with_plugin),
            "fixed_median_us": statistics.median(with_fixed),
            "plugin_p90_us": percentile(with_plugin, 0.9),
            "fixed_p90_us": percentile(with_fixed, 0.9),
            "added_median_us": statistics.median(with_plugin) - statistics.median(with_fixed),
            "paired_diff_median_us": statistics.median(diffs),
            "hook_us": hook,
            "agent_calls_during_run": plugged.tapis_agent_keeper.fetches - fetches_before,
        }


def hook_cost(t: Any, rounds: int = 100_000) -> float:
    """The plugin's own work per request, without tapipy or HTTP: the request
    hook, the same token check in the session's ``send``, and the look at
    the answer for a refused token."""
    import requests

    from tapis_agent.tapipy import refused_token

    request = requests.Request("GET", t.base_url, headers={"X-Tapis-Token": t.get_access_jwt()}).prepare()
    response = requests.Response()
    response.status_code = 200
    pre: Callable[..., None] = t.plugin_on_call_pre_request_callables[0]
    start = time.perf_counter()
    for _ in range(rounds):
        pre(None, request)
        pre(None, request)
        refused_token(response)
    return (time.perf_counter() - start) / rounds * 1e6


def table(r: dict[str, Any]) -> str:
    verdict = "met" if r["added_median_us"] <= TARGET_US else "MISSED"
    return "\n".join(
        [
            "| tapipy `getSystem` against the fake | median | p90 |",
            "|---|---|---|",
            f"| fixed token (`access_token=`) | {r['fixed_median_us']:.0f} µs | {r['fixed_p90_us']:.0f} µs |",
            f"| through the plugin | {r['plugin_median_us']:.0f} µs | {r['plugin_p90_us']:.0f} µs |",
            f"| **added by the plugin** (difference of medians) | **{r['added_median_us']:.1f} µs** "
            f"(target ≤ {TARGET_US:.0f} µs: {verdict}) | |",
            f"| median of the paired differences | {r['paired_diff_median_us']:.1f} µs | |",
            f"| the plugin's hooks alone (per request) | {r['hook_us']:.2f} µs | |",
            "",
            f"{r['iterations']} calls each, interleaved, one run; the agent was asked "
            f"{r['agent_calls_during_run']} times during the timed calls.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    result = measure(args.iterations)
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    main()
