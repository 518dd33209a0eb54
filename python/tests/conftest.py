"""Fixtures: a fake Tapis, a sandbox, an agent from the installed package, a login.

The package under test runs in this process and reaches the agent through
the environment (``TAPIS_AGENT_SOCK``), as a notebook's would.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tapis_agent

from harness import PASSWORD, SCRUBBED, USER, AgentProcess, Fake, Sandbox


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[Fake]:
    """The fake Tapis; ``@pytest.mark.fake_args("--token-ttl", "3")`` adds options."""
    marker = request.node.get_closest_marker("fake_args")
    f = Fake(*(marker.args if marker else ()))
    yield f
    f.stop()


@pytest.fixture
def sandbox(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox's environment for this process (and so for tapis-cred)."""
    s = Sandbox()
    for var in SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    for key, value in s.env(fake.base_url).items():
        monkeypatch.setenv(key, value)
    yield s
    s.remove()


@pytest.fixture
def agent(sandbox: Sandbox, fake: Fake, monkeypatch: pytest.MonkeyPatch) -> Iterator[AgentProcess]:
    a = AgentProcess(sandbox, fake.base_url, sandbox.env(fake.base_url))
    monkeypatch.setenv("TAPIS_AGENT_SOCK", str(a.socket))
    yield a
    a.stop()


@pytest.fixture
def logged_in(agent: AgentProcess) -> AgentProcess:
    tapis_agent.login(USER, PASSWORD)
    return agent
