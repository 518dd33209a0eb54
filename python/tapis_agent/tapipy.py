"""tapipy plugin: every request of a ``tapipy.Tapis`` carries a token the agent vouches for.

    from tapipy.tapis import Tapis
    t = Tapis(base_url="https://designsafe.tapis.io", plugins=["tapis_agent.tapipy"])

The token is kept in the process and replaced only when it is about to
expire, so a request costs a clock read, not a call to the agent: once per
token lifetime (four hours on DesignSafe) the plugin asks the agent, which
has refreshed it already. A client built this way never fails with
``TAPIS_SECURITY_JWT_EXPIRED``.

The agent must talk to the same Tapis as the client: a different base URL is
an error naming both (``Tapis(base_url=None, ...)`` takes the agent's). Pass
``tapis_agent=Agent(...)`` to ``Tapis(...)`` to use another socket or profile.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .agent import Agent
from .errors import TapisAgentError

#: Longest margin before expiry at which the token is replaced, in seconds.
_MAX_MARGIN = 60
#: Shortest margin: expiry is counted in whole seconds.
_MIN_MARGIN = 2


def normalize_url(url: str) -> str:
    """``HTTPS://Host/`` and ``https://host`` are the same Tapis."""
    url = url.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.lower()
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def same_tapis(agent: Agent, base_url: str | None) -> str:
    """The agent's base URL, after checking it is ``base_url`` (when given)."""
    served = agent.base_url()
    if base_url and normalize_url(base_url) != normalize_url(served):
        raise TapisAgentError(
            f"the client asks for {base_url} but the agent talks to {served}: its tokens are not valid there",
            f"use base_url={served!r}, or run an agent (or a profile) for {base_url}",
            exit_code=2,
            kind="usage",
        )
    return served


class TokenKeeper:
    """The current token and when to replace it.

    The margin follows the token's lifetime (half of it, between 2 s and
    60 s) and is counted in whole seconds as the agent counts, so that a
    token the agent hands out is never judged too old on arrival.
    """

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._lock = threading.Lock()
        # (token, expires_at_unix, whole seconds to keep); replaced whole, so
        # readers need no lock.
        self._current: tuple[str, int, int] | None = None
        self._lifetime = 0
        #: How many times the agent was asked (tests, benchmarks).
        self.fetches = 0

    def get(self) -> str:
        """A token valid for at least the margin; asks the agent only near expiry."""
        current = self._current
        if current is not None and current[1] - int(time.time()) >= current[2]:
            return current[0]
        return self._renew()

    def drop(self, token: str) -> None:
        """Tapis refused ``token``: ask the agent next time."""
        with self._lock:
            if self._current is not None and self._current[0] == token:
                self._current = None

    def _renew(self) -> str:
        with self._lock:
            current = self._current
            if current is not None and current[1] - int(time.time()) >= current[2]:
                return current[0]
            margin = max(_MIN_MARGIN, min(_MAX_MARGIN, self._lifetime // 2))
            doc = self.agent._token(margin)
            self.fetches += 1
            token = doc["access_token"]
            expires = doc.get("expires_at_unix")
            if not isinstance(expires, int) or isinstance(expires, bool):
                raise TapisAgentError("token: the answer has no expires_at_unix")
            self._lifetime = max(self._lifetime, expires - int(time.time()))
            margin = max(_MIN_MARGIN, min(_MAX_MARGIN, self._lifetime // 2))
            self._current = (token, expires, min(margin, max(1, expires - int(time.time()))))
            return str(token)


def _set_client_token(t: Any, token: str) -> None:
    """Keeps ``t.access_token`` current for code that reads it (expiry prints,
    ``t.upload``), in tapipy's own form when the token parses as a JWT."""
    try:
        from tapipy.tapis import TapisResult

        t.access_token = t.add_claims_to_token(TapisResult(access_token=token))
    except Exception:  # noqa: BLE001 - any parse failure: keep the plain string
        t.access_token = token


def on_tapis_client_instantiation(t: Any, **kwargs: Any) -> None:
    """tapipy's hook, called at the end of ``Tapis.__init__``."""
    agent = kwargs.get("tapis_agent")
    if not isinstance(agent, Agent):
        agent = Agent()
    t.base_url = same_tapis(agent, t.base_url)
    keeper = TokenKeeper(agent)
    _set_client_token(t, keeper.get())
    t.tapis_agent_keeper = keeper

    def pre_request(op: Any, request: Any, **_: Any) -> None:
        token = keeper.get()
        if token != request.headers.get("X-Tapis-Token"):
            request.headers["X-Tapis-Token"] = token
            if t.get_access_jwt() != token:
                _set_client_token(t, token)

    def post_request(op: Any, response: Any, **_: Any) -> None:
        # The JWT filter answers 401 in plain text, TAPIS_SECURITY_...: the
        # token itself was refused (revoked, clock skew): don't reuse it.
        if response.status_code == 401 and response.content[:15] == b"TAPIS_SECURITY_":
            sent = response.request.headers.get("X-Tapis-Token") if response.request else None
            if sent:
                keeper.drop(sent)

    t.plugin_on_call_pre_request_callables.append(pre_request)
    t.plugin_on_call_post_request_callables.append(post_request)
