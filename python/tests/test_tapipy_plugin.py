"""The tapipy plugin with the real tapipy against the fake Tapis."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from tapipy.errors import InternalServerError, NotFoundError, UnauthorizedError
from tapipy.tapis import Tapis

import tapis_agent
from tapis_agent import _cred

from harness import PASSWORD, USER, WAIT, AgentProcess, Fake, Sandbox

#: How long the client keeps calling with 3 s tokens: three lifetimes (the
#: agent and the fake are processes of their own, so the tokens age in real time).
CALLING_SECS = 9.0
#: Upper bound on calls in that time, so that the loop is bounded in count too.
MAX_CALLS = 100_000


def client(base_url: str | None) -> Tapis:
    return Tapis(base_url=base_url, plugins=["tapis_agent.tapipy"])


def replaced_while_idle(t: Tapis, fake: Fake) -> str:
    """What idle time does to a client, without waiting: the agent's token is
    replaced (here by a new login; in life by a refresh), the one the plugin
    holds is revoked at the fake (sending it would be refused, and counted),
    and the plugin's clock moves past that token's expiry. Returns the
    agent's new token. The fake's stats are reset."""
    held = t.get_access_jwt()
    ahead = t.access_token.expires_in().total_seconds() + 1
    tapis_agent.login(USER, PASSWORD)
    fresh = tapis_agent.token().access_token
    assert fresh != held
    fake.call("POST", "/v3/oauth2/tokens/revoke", {"token": held})
    t.tapis_agent_keeper.clock = lambda: time.time() + ahead
    fake.call("DELETE", "/_fake/stats")
    return fresh


@pytest.mark.fake_args("--token-ttl", "3")
def test_a_client_outlives_many_3s_tokens(logged_in: AgentProcess, fake: Fake) -> None:
    t = client(fake.base_url)
    keeper = t.tapis_agent_keeper
    fake.call("DELETE", "/_fake/stats")
    calls = 0
    tokens = set()
    deadline = time.monotonic() + CALLING_SECS
    while time.monotonic() < deadline and calls < MAX_CALLS:
        system = t.systems.getSystem(systemId="stampede3")
        assert system.id == "stampede3"
        tokens.add(t.get_access_jwt())
        calls += 1
    stats = fake.stats()
    assert stats["expired_token"] == 0, stats
    assert stats["rejected_token"] == 0, stats
    assert stats["calls"]["getSystem"] == calls
    # Many tokens were used, each fetched once: the agent is asked once per
    # token, not once per request.
    assert len(tokens) >= CALLING_SECS / 3
    assert keeper.fetches <= len(tokens) + 2
    assert calls > 10 * keeper.fetches, (calls, keeper.fetches)


def test_requests_carry_the_agents_token_and_cost_no_ipc(logged_in: AgentProcess, fake: Fake) -> None:
    t = client(fake.base_url)
    keeper = t.tapis_agent_keeper
    before = keeper.fetches
    for _ in range(20):
        t.systems.getSystem(systemId="ls6")
    assert keeper.fetches == before
    assert t.get_access_jwt() == tapis_agent.token().access_token
    # tapipy's own view of the token stays usable (expiry prints, claims).
    assert t.access_token.claims["tapis/username"] == USER
    assert t.access_token.expires_at == tapis_agent.token().expires_at


def test_a_token_the_jwt_filter_refuses_is_replaced_and_the_call_sent_again(
    logged_in: AgentProcess, fake: Fake
) -> None:
    t = client(fake.base_url)
    keeper = t.tapis_agent_keeper
    # A 401 of the service (not of the JWT filter) keeps the token and is raised.
    fake.call("POST", "/_fake/faults", {"operation": "getSystem", "kind": {"status": 401}, "times": 1})
    with pytest.raises(UnauthorizedError):
        t.systems.getSystem(systemId="ls6")
    before, old = keeper.fetches, t.get_access_jwt()
    t.systems.getSystem(systemId="ls6")
    assert keeper.fetches == before
    # The filter's plain-text TAPIS_SECURITY_...: another token, one retry.
    fake.call("DELETE", "/_fake/stats")
    fake.call("POST", "/_fake/faults", {"operation": "getSystem", "kind": "jwt_refused", "times": 1})
    assert t.systems.getSystem(systemId="ls6").id == "ls6"
    stats = fake.stats()
    assert (stats["calls"]["getSystem"], stats["rejected_token"]) == (2, 1), stats
    assert keeper.fetches == before + 1
    assert t.get_access_jwt() != old and tapis_agent.token().access_token == t.get_access_jwt()
    # The next calls use the new token: no more refusals, no more asking.
    t.systems.getSystem(systemId="ls6")
    assert fake.stats()["rejected_token"] == 1 and keeper.fetches == before + 1


@pytest.mark.fake_args("--enforce-revocation")
def test_the_proxys_token_is_revoked_500_is_a_token_problem_not_an_outage(
    logged_in: AgentProcess, fake: Fake, tmp_path: Path
) -> None:
    t = client(fake.base_url)
    old = t.get_access_jwt()
    fake.call("POST", "/v3/oauth2/tokens/revoke", {"token": old})
    fake.call("DELETE", "/_fake/stats")
    assert t.systems.getSystem(systemId="frontera").id == "frontera"
    assert fake.stats()["calls"]["getSystem"] == 2
    # Uploads too (they skip tapipy's hooks).
    fake.call("POST", "/v3/oauth2/tokens/revoke", {"token": t.get_access_jwt()})
    source = tmp_path / "input.tcl"
    source.write_text("puts hello\n")
    t.upload(str(source), "stampede3", "work/input.tcl")
    assert fake.stats()["calls"]["insert"] == 2
    assert t.get_access_jwt() == tapis_agent.token().access_token != old


@pytest.mark.fake_args("--enforce-revocation")
def test_a_refused_token_the_agent_cannot_replace_is_sent_once(
    agent: AgentProcess, fake: Fake, sandbox: Sandbox
) -> None:
    # A login without a refresh token: the agent has nothing better to give.
    minted = fake.call("POST", "/_fake/tokens", {"username": USER, "ttl_secs": 600})["access_token"]
    token_file = sandbox.dir / "tokens.json"
    token_file.write_text(json.dumps({"access_token": minted, "expires_at": "2099-01-01T00:00:00+00:00"}))
    done = subprocess.run(
        [_cred.find_cred(), "login", "--import-token-file", str(token_file)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    t = client(fake.base_url)
    fake.call("POST", "/v3/oauth2/tokens/revoke", {"token": minted})
    fake.call("DELETE", "/_fake/stats")
    with pytest.raises(InternalServerError) as caught:
        t.systems.getSystem(systemId="ls6")
    assert caught.value.message == "Token is revoked."
    assert fake.stats()["calls"]["getSystem"] == 1


@pytest.mark.fake_args("--enforce-revocation")
def test_upload_after_the_token_expired_asks_the_agent_first(
    logged_in: AgentProcess, fake: Fake, tmp_path: Path
) -> None:
    t = client(fake.base_url)
    keeper = t.tapis_agent_keeper
    source = tmp_path / "model.tcl"
    source.write_text("model basic -ndm 2\n")
    fresh = replaced_while_idle(t, fake)
    before = keeper.fetches
    result = t.upload(str(source), "stampede3", "work/model.tcl")
    assert result is not None
    # The expired token was not sent: the agent was asked, and its answer went.
    assert keeper.fetches > before
    assert t.get_access_jwt() == fresh
    stats = fake.stats()
    # Sent once, with a valid token: nothing expired or refused on the way.
    assert stats["calls"]["insert"] == 1
    assert (stats["expired_token"], stats["rejected_token"]) == (0, 0), stats
    # tapipy's own errors still come through: an unknown system is a 404.
    with pytest.raises(NotFoundError):
        t.upload(str(source), "no-such-system", "x")


@pytest.mark.fake_args("--enforce-revocation")
def test_the_token_read_from_the_client_is_current_after_idle_time(logged_in: AgentProcess, fake: Fake) -> None:
    import requests

    t = client(fake.base_url)
    keeper = t.tapis_agent_keeper
    fresh = replaced_while_idle(t, fake)
    before = keeper.fetches
    # Code that takes the token for its own calls (dapi's projects and
    # publications do) gets the agent's current one, with no Tapis call by
    # the client.
    token = t.access_token
    assert keeper.fetches > before
    assert token.access_token == fresh
    assert token.expires_in().total_seconds() > 0 and token.claims["tapis/username"] == USER
    answer = requests.get(
        f"{fake.base_url}/v3/systems/ls6", headers={"X-Tapis-Token": token.access_token}, timeout=WAIT
    )
    assert answer.status_code == 200, answer.text
    assert (fake.stats()["expired_token"], fake.stats()["rejected_token"]) == (0, 0)
    # Still a tapipy client to anyone who checks.
    assert isinstance(t, Tapis) and type(t).__name__ == "Tapis"


def test_base_url_of_the_agent_when_none_given(logged_in: AgentProcess, fake: Fake) -> None:
    t = client(None)
    assert t.base_url == fake.base_url
    assert t.systems.getSystem(systemId="frontera").id == "frontera"


def test_another_tapis_is_an_error_naming_both(logged_in: AgentProcess, fake: Fake) -> None:
    # Loopback, and a tenant_id so that tapipy itself asks nothing there.
    other = "http://127.0.0.1:9"
    with pytest.raises(tapis_agent.TapisAgentError) as caught:
        Tapis(base_url=other, tenant_id="designsafe", plugins=["tapis_agent.tapipy"])
    assert other in caught.value.message
    assert fake.base_url in caught.value.message
    # Spelling differences are the same Tapis.
    same = fake.base_url.replace("127.0.0.1", "127.0.0.1".upper()).replace("http:", "HTTP:") + "/"
    t = Tapis(base_url=same, tenant_id="designsafe", plugins=["tapis_agent.tapipy"])
    assert t.base_url == fake.base_url


def test_not_logged_in_fails_at_construction(agent: AgentProcess, fake: Fake) -> None:
    with pytest.raises(tapis_agent.NotLoggedIn):
        client(fake.base_url)


def test_another_agent_through_tapis_kwargs(
    logged_in: AgentProcess, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAPIS_AGENT_SOCK")
    t = Tapis(
        base_url=fake.base_url,
        plugins=["tapis_agent.tapipy"],
        tapis_agent=tapis_agent.Agent(socket=str(logged_in.socket)),
    )
    assert t.systems.getSystem(systemId="ls6").id == "ls6"
