"""dapi (DesignSafe-CI/dapi, from PyPI) with the agent, against the fake Tapis."""

from __future__ import annotations

import logging
import sys

import pytest

import tapis_agent

from harness import USER, AgentProcess, Fake

# dapi 0.6.3 declares Python >= 3.9 but does not import there: its
# dapi/__init__.py evaluates `_logging.Handler | None` at import time.
pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 10), reason="dapi 0.6.3 does not import on Python 3.9 (`Handler | None` in dapi/__init__.py)"
)

#: The Tapis calls of a TMS setup: none of them may happen when the agent knows.
SETUP_CALLS = ("getSystem", "checkUserCredential", "createUserCredential", "create_token", "list_tenants")


def summary(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dapi.systems" and r.levelno >= logging.INFO]


def test_one_line_gives_a_dsclient_whose_tms_setup_the_agent_answers(
    logged_in: AgentProcess, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    from dapi import DSClient

    from tapis_agent.dapi import client

    caplog.set_level(logging.INFO, logger="dapi")
    fake.call("DELETE", "/_fake/stats")
    ds = client()
    assert isinstance(ds, DSClient)
    assert ds.tapis.username == USER and ds.tapis.tapis_agent_keeper is not None
    assert summary(caplog) == [
        "TMS credentials ready: frontera, stampede3, ls6 (newly created: frontera, stampede3, ls6)"
    ]
    assert fake.calls("createUserCredential") == 3
    stored = fake.call("GET", "/_fake/credentials")
    assert sorted(c["system"] for c in stored if c["user"] == USER) == ["frontera", "ls6", "stampede3"]

    # Every later DSClient: answered from the agent's cache, no Tapis call.
    caplog.clear()
    fake.call("DELETE", "/_fake/stats")
    again = client()
    assert summary(caplog) == ["TMS credentials ready: frontera, stampede3, ls6"]
    calls = fake.stats()["calls"]
    assert {op: calls.get(op, 0) for op in SETUP_CALLS} == dict.fromkeys(SETUP_CALLS, 0), calls
    # The client works, with the agent's token.
    assert again.tapis.systems.getSystem(systemId="ls6").id == "ls6"
    assert again.tapis.get_access_jwt() == tapis_agent.token().access_token
    # dapi's own hook is back as it was.
    import dapi.systems

    assert dapi.systems.setup_tms_credentials.__module__ == "dapi.systems"


def test_systems_of_other_kinds_are_skipped_as_dapi_does(
    logged_in: AgentProcess, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    from tapis_agent.dapi import client, setup_tms_credentials

    caplog.set_level(logging.INFO, logger="dapi")
    ds = client(systems=["ls6", "corral.pki", "no-such-system"])
    assert summary(caplog) == ["TMS credentials ready: ls6 (newly created: ls6)"]
    assert fake.calls("createUserCredential") == 1
    assert setup_tms_credentials(ds.tapis, ["ls6", "corral.pki", "no-such-system"]) == {
        "ls6": "ready",
        "corral.pki": "skipped",
        "no-such-system": "skipped",
    }


def test_dsclient_on_a_plugin_client_knows_the_user(
    logged_in: AgentProcess, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    # dapi's documented way with a ready client: DSClient(tapis_client=t).
    # With the plugin, t.username is the agent's user, so dapi's own setup
    # runs (through Tapis) instead of "Could not determine username".
    from dapi import DSClient
    from tapipy.tapis import Tapis

    caplog.set_level(logging.INFO, logger="dapi")
    t = Tapis(base_url=fake.base_url, tenant_id="designsafe", plugins=["tapis_agent.tapipy"])
    assert t.username == USER
    DSClient(tapis_client=t)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("Could not determine username" in m for m in messages), messages
    assert fake.calls("createUserCredential") == 3


def test_not_logged_in(agent: AgentProcess) -> None:
    from tapis_agent.dapi import client

    with pytest.raises(tapis_agent.NotLoggedIn):
        client()
