"""examples/python/tapis_token.py, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from harness import REPO, WAIT, AgentProcess, Fake

SCRIPT = REPO / "examples/python/tapis_token.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=WAIT,
        check=False,
    )


def test_the_example(logged_in: AgentProcess, fake: Fake) -> None:
    done = run("ls6")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ls6: ls6.tacc.utexas.edu (TMS_KEYS), credentials created\n"
    assert fake.calls("getSystem") >= 1 and fake.calls("createUserCredential") == 1


def test_the_example_exits_with_the_agents_code(logged_in: AgentProcess) -> None:
    done = run("corral.pki")
    assert done.returncode == 6
    assert done.stderr.startswith("tapis-agent: establish corral.pki: system uses PKI_KEYS")
