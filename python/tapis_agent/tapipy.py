"""tapipy plugin: every request of a ``tapipy.Tapis`` carries a token the agent vouches for.

    from tapipy.tapis import Tapis
    t = Tapis(base_url="https://designsafe.tapis.io", plugins=["tapis_agent.tapipy"])

The token is kept in the process and replaced only when it is about to
expire, so a request costs a clock read, not a call to the agent: once per
token lifetime (four hours on DesignSafe) the plugin asks the agent, which
has refreshed it already. A client built this way never fails with
``TAPIS_SECURITY_JWT_EXPIRED``.

``t.upload(...)``, which skips tapipy's request hooks, carries a fresh token
too. When Tapis refuses the token itself (401 ``TAPIS_SECURITY_...`` from a
service's JWT filter, or the proxy's 500 ``Token is revoked.``), the plugin
drops it, asks the agent for another (the agent refreshes) and sends the
request once more; a second refusal is raised as tapipy raises it.

The agent must talk to the same Tapis as the client: a different base URL is
an error naming both (``Tapis(base_url=None, ...)`` takes the agent's). Pass
``tapis_agent=Agent(...)`` to ``Tapis(...)`` to use another socket or profile.
Needs tapipy 1.2 or later (the first with plugins).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from .agent import Agent, Token
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

    ``clock`` (Unix seconds, ``time.time`` by default) is what a token's age
    is judged by; tests move it to age a token without waiting.
    """

    def __init__(self, agent: Agent, clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self.clock = clock
        self._lock = threading.Lock()
        # (token, expires_at_unix, whole seconds to keep); replaced whole, so
        # readers need no lock.
        self._current: tuple[str, int, int] | None = None
        self._lifetime = 0
        #: How many times the agent was asked (tests, benchmarks).
        self.fetches = 0
        #: The user the tokens are for.
        self.username: str | None = None

    def get(self) -> str:
        """A token valid for at least the margin; asks the agent only near expiry."""
        current = self._current
        if current is not None and current[1] - self._now() >= current[2]:
            return current[0]
        return self._renew()

    def replace(self, refused: str) -> str:
        """Tapis refused ``refused`` (revoked, or invalid there): a token other
        than it, or ``refused`` itself when the agent has none better.

        The agent is asked for a token valid one second longer than the
        refused one, which only a refreshed token is. A token issued this very
        second has no longer-lived successor until the next second (the agent
        counts whole seconds and says so with a usage error): then it is asked
        once more after that second. If it cannot refresh, the answer is what
        it holds. Raises the agent's error when it has no token at all.
        """
        with self._lock:
            current = self._current
            if current is not None and current[0] != refused and current[1] > self._now():
                return current[0]
            self._current = None
            expires = current[1] if current is not None else _jwt_exp(refused)
            for attempt in (1, 2):
                need = max(1, (expires or 0) - self._now() + 1)
                try:
                    return self._store(self.agent.token(need))
                except TapisAgentError as e:
                    if e.kind != "usage" or attempt == 2:
                        break
                    time.sleep(1.05 - time.time() % 1.0)
            return self._store(self.agent.token(self._margin()))

    def _now(self) -> int:
        return int(self.clock())

    def _margin(self) -> int:
        return max(_MIN_MARGIN, min(_MAX_MARGIN, self._lifetime // 2))

    def _renew(self) -> str:
        with self._lock:
            current = self._current
            if current is not None and current[1] - self._now() >= current[2]:
                return current[0]
            return self._store(self.agent.token(self._margin()))

    def _store(self, token: Token) -> str:
        """Keeps the agent's answer ``token``; the caller holds the lock."""
        self.fetches += 1
        self.username = token.username or self.username
        expires = int(token.expires_at.timestamp())
        self._lifetime = max(self._lifetime, expires - self._now())
        self._current = (token.access_token, expires, min(self._margin(), max(1, expires - self._now())))
        return token.access_token


def _jwt_exp(token: str) -> int | None:
    """The ``exp`` claim of a JWT, unverified (only to ask for a newer one)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
    except (IndexError, ValueError, AttributeError):
        return None
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else None


def refused_token(response: Any) -> bool:
    """Whether Tapis refused the request's token itself, not the request: the
    JWT filter's plain-text 401 ``TAPIS_SECURITY_...`` (tapis-shared-java,
    ``JWTValidateRequestFilter``), or the 500 tapis-deployer's proxy answers
    for a revoked token (nginx ``error_page 500 /token-revoked.json``:
    ``{"status": "error", "message": "Token is revoked.", ...}``)."""
    status = getattr(response, "status_code", None)
    if status == 401:
        return bytes(response.content[:15]) == b"TAPIS_SECURITY_"
    if status == 500:
        try:
            doc = response.json()
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("message") == "Token is revoked."
    return False


def _set_client_token(t: Any, token: str) -> None:
    """Keeps ``t.access_token`` current for code that reads it (expiry prints,
    ``t.upload``), in tapipy's own form when the token parses as a JWT."""
    try:
        from tapipy.tapis import TapisResult

        t.access_token = t.add_claims_to_token(TapisResult(access_token=token))
    except Exception:  # noqa: BLE001 - any parse failure: keep the plain string
        t.access_token = token


#: Per tapipy class, its subclass whose ``access_token`` is always current.
_CURRENT_CLASSES: dict[type, type] = {}


def _keep_access_token_current(t: Any) -> None:
    """Makes ``t.access_token`` current whenever it is read, not only at the
    client's requests: code that takes the token from the client for its own
    calls (dapi's ``projects`` and ``publications`` call DesignSafe's API with
    ``t.access_token.access_token``) gets a valid one after any idle time.

    ``t`` becomes an instance of a subclass of its class (``isinstance``
    holds) with ``access_token`` as a property over the instance's own value.
    Where the class cannot be changed, ``t.access_token`` still follows every
    request."""
    base = type(t)
    current = _CURRENT_CLASSES.get(base)
    if current is None:

        def read(self: Any) -> Any:
            held = self.__dict__.get("access_token")
            keeper = self.__dict__.get("tapis_agent_keeper")
            if keeper is None:
                return held
            token = keeper.get()
            if getattr(held, "access_token", held) != token:
                _set_client_token(self, token)
                held = self.__dict__.get("access_token")
            return held

        def write(self: Any, value: Any) -> None:
            self.__dict__["access_token"] = value

        current = type(
            base.__name__,
            (base,),
            {
                "__module__": base.__module__,
                "__qualname__": base.__qualname__,
                "access_token": property(read, write, doc="The agent's current token (tapis_agent.tapipy)."),
            },
        )
        _CURRENT_CLASSES[base] = current
    with contextlib.suppress(TypeError):
        t.__class__ = current


def on_tapis_client_instantiation(t: Any, **kwargs: Any) -> None:
    """tapipy's hook, called at the end of ``Tapis.__init__``."""
    agent = kwargs.get("tapis_agent")
    if not isinstance(agent, Agent):
        agent = Agent()
    t.base_url = same_tapis(agent, t.base_url)
    keeper = TokenKeeper(agent)
    _set_client_token(t, keeper.get())
    t.tapis_agent_keeper = keeper
    _keep_access_token_current(t)
    # tapipy sets it only from a username given; tools read it (dapi's TMS
    # setup, its MyData paths).
    if not getattr(t, "username", None):
        t.username = keeper.username

    def fresh(token: str | None = None) -> str:
        """``token`` (default: the keeper's), also in ``t.access_token``."""
        token = token or keeper.get()
        if t.get_access_jwt() != token:
            _set_client_token(t, token)
        return token

    def pre_request(op: Any, request: Any, **_: Any) -> None:
        # tapipy wrote t.access_token into the header: when that is the
        # current token, so is t.access_token.
        token = keeper.get()
        if token != request.headers.get("X-Tapis-Token"):
            request.headers["X-Tapis-Token"] = fresh(token)

    t.plugin_on_call_pre_request_callables.append(pre_request)
    session = getattr(t, "requests_session", None)
    if session is not None:
        session.send = _sending(session.send, keeper, fresh)
    upload = getattr(t, "upload", None)
    if callable(upload):
        t.upload = _uploading(upload, fresh)


def _sending(send: Callable[..., Any], keeper: TokenKeeper, fresh: Callable[..., str]) -> Callable[..., Any]:
    """The session's ``send``: every request with an ``X-Tapis-Token`` leaves
    with the current token, and one whose token Tapis refused is sent once
    more with another (bodies that can be sent twice only)."""

    @functools.wraps(send)
    def sending(request: Any, **kwargs: Any) -> Any:
        sent = request.headers.get("X-Tapis-Token")
        if sent is None:
            return send(request, **kwargs)
        token = keeper.get()
        if token != sent:
            request.headers["X-Tapis-Token"] = fresh(token)
        response = send(request, **kwargs)
        if not refused_token(response) or hasattr(request.body, "read"):
            return response
        try:
            other = keeper.replace(token)
        except TapisAgentError:
            # No token to try instead: Tapis's own answer is the truth.
            return response
        if other == token:
            return response
        fresh(other)
        again = request.copy()
        again.headers["X-Tapis-Token"] = other
        return send(again, **kwargs)

    return sending


def _uploading(upload: Callable[..., Any], fresh: Callable[..., str]) -> Callable[..., Any]:
    """``t.upload``, which tapipy sends without its request hooks and with
    whatever ``t.access_token`` holds: the token is made current first."""

    @functools.wraps(upload)
    def uploading(*args: Any, **kwargs: Any) -> Any:
        fresh()
        return upload(*args, **kwargs)

    return uploading
