"""The tapipy plugin with the real tapipy against the fake Tapis."""

from __future__ import annotations

import time

import pytest
from tapipy.errors import UnauthorizedError
from tapipy.tapis import Tapis

import tapis_agent

from harness import USER, AgentProcess, Fake

#: How long the client keeps calling with 3 s tokens.
CALLING_SECS = 30.0
#: Upper bound on calls in that time, so that the loop is bounded in count too.
MAX_CALLS = 100_000


def client(base_url: str | None) -> Tapis:
    return Tapis(base_url=base_url, plugins=["tapis_agent.tapipy"])


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


# The live services record revocations without enforcing them; the fake's
# strict mode makes a revoked token one the JWT filter refuses.
@pytest.mark.fake_args("--enforce-revocation")
def test_a_token_the_jwt_filter_refuses_is_not_reused(logged_in: AgentProcess, fake: Fake) -> None:
    t = client(fake.base_url)
    keeper = t.tapis_agent_keeper
    # A 401 of the service (not of the JWT filter) keeps the token.
    fake.call("POST", "/_fake/faults", {"operation": "getSystem", "kind": {"status": 401}, "times": 1})
    with pytest.raises(UnauthorizedError):
        t.systems.getSystem(systemId="ls6")
    before = keeper.fetches
    t.systems.getSystem(systemId="ls6")
    assert keeper.fetches == before
    # The filter's plain-text TAPIS_SECURITY_JWT_REVOKED: asked again next time.
    fake.call("POST", "/v3/oauth2/tokens/revoke", {"token": t.get_access_jwt()})
    with pytest.raises(UnauthorizedError):
        t.systems.getSystem(systemId="ls6")
    with pytest.raises(UnauthorizedError):
        t.systems.getSystem(systemId="ls6")
    assert keeper.fetches == before + 1


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
