"""The Python API: what ``tapis-cred`` does, as functions returning objects.

``Agent`` holds how to reach the agent (socket, profile, timeout); the
module-level functions of :mod:`tapis_agent` use a default one that follows
the environment exactly as ``tapis-cred`` does (``TAPIS_AGENT_SOCK``,
``TAPIS_PROFILE``).
"""

from __future__ import annotations

import builtins
import getpass
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from . import _cred
from .errors import TapisAgentError, UnexpectedOutput, from_document

#: A callable given one line about a wait, e.g. ``print``.
Progress = Callable[[str], None]

#: ``tapis-cred``'s own default for how long to wait for the agent, in seconds.
DEFAULT_TIMEOUT = 120


@dataclass(frozen=True)
class Token:
    """An access token and what it is for. ``repr()`` never shows the token."""

    access_token: str = field(repr=False)
    expires_at: datetime
    username: str
    base_url: str

    def expires_in(self) -> float:
        """Seconds of validity left (negative once expired)."""
        return (self.expires_at - datetime.now(timezone.utc)).total_seconds()

    def __str__(self) -> str:
        return f"token for {self.username}, valid until {_until(self.expires_at)}"


@dataclass(frozen=True)
class SystemResult:
    """The outcome for one system of ``establish``, ``check`` or ``revoke``.

    ``state`` is one of ``present``, ``created``, ``recreated``, ``revoked``,
    ``missing``, ``rejected``, ``host_unreachable``, or ``None`` when this
    system failed; then ``error`` says why.
    """

    system: str
    user: str
    state: str | None
    cached: bool
    error: TapisAgentError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        """One line, as ``tapis-cred`` prints it: ``ls6: created``,
        ``stampede3: present (cached)``, or the error."""
        if self.error is not None:
            named = f"{self.system}:" in self.error.message
            return str(self.error) if named else f"{self.system}: {self.error}"
        return f"{self.system}: {self.state}" + (" (cached)" if self.cached else "")


class SystemResults(list[SystemResult]):
    """The results of ``establish``, ``check`` or ``revoke``: a list, one per
    system in the order given, that prints one line per system."""

    def __str__(self) -> str:
        return "\n".join(str(r) for r in self)


@dataclass(frozen=True)
class Login:
    """A completed login."""

    username: str
    tenant: str
    expires_at: datetime
    has_refresh_token: bool
    #: False when the agent cannot keep this login fresh: it ends when the
    #: token expires; ``refresh_problem`` says why.
    refreshable: bool = True
    refresh_problem: str | None = None

    def __str__(self) -> str:
        line = f"logged in as {self.username} ({self.tenant}), token valid until {_until(self.expires_at)}"
        if self.refresh_problem:
            return line + f", not refreshable: {self.refresh_problem}"
        return line + ("" if self.refreshable and self.has_refresh_token else ", not refreshable")


@dataclass(frozen=True)
class AgentInfo:
    version: str
    pid: int
    uptime_secs: int
    base_url: str


@dataclass(frozen=True)
class LoginState:
    """``state`` is ``logged_out``, ``login_required`` or ``logged_in``."""

    state: str
    username: str | None
    tenant: str | None
    reason: str | None
    expires_at: datetime | None
    has_refresh_token: bool | None
    refresh_expires_at: datetime | None
    next_refresh_at: datetime | None
    last_refresh_error: str | None
    #: Why the login cannot be refreshed, when it cannot.
    refresh_problem: str | None = None


@dataclass(frozen=True)
class CachedSystem:
    system: str
    user: str
    state: str
    checked_at: datetime


@dataclass(frozen=True)
class StateDir:
    """Where the agent keeps the login and the cache, and how it locks it."""

    path: str
    filesystem: str | None
    lock_method: str
    lock_reason: str | None


@dataclass(frozen=True)
class Status:
    """``print(status)`` shows the table ``tapis-cred status`` prints."""

    agent: AgentInfo
    login: LoginState
    systems: list[CachedSystem]
    systems_total: int
    state_dir: StateDir | None = None

    def __str__(self) -> str:
        now = _now()
        rows = [
            ("agent", f"tapis-agent {self.agent.version}, pid {self.agent.pid}, up {_span(self.agent.uptime_secs)}"),
            ("tapis", self.agent.base_url),
        ]
        login = self.login
        if login.state == "logged_in":
            rows.append(("login", f"{login.username} ({login.tenant})"))
            if login.expires_at is not None:
                rows.append(("token", f"valid until {_human(login.expires_at)} ({_left(now, login.expires_at)})"))
            if login.refresh_problem:
                refresh = f"NOT POSSIBLE: {login.refresh_problem}"
            else:
                refresh = "yes" if login.has_refresh_token else "no"
            if login.refresh_expires_at is not None:
                until = login.refresh_expires_at
                refresh += f", valid until {_human(until)} ({_left(now, until)})"
            if login.next_refresh_at is not None:
                nxt = login.next_refresh_at
                gap = _span(abs((nxt - now).total_seconds()))
                when = f"in {gap}" if nxt >= now else f"{gap} overdue"
                refresh += f"; next refresh {_human(nxt)} ({when})"
            rows.append(("refresh", refresh))
            if login.last_refresh_error:
                rows.append(("last refresh error:", login.last_refresh_error))
        elif login.state == "login_required":
            who = f" for {login.username}" if login.username else ""
            rows.append(("login", f"required{who}: {login.reason} (log in: tapis_agent.login())"))
        else:
            rows.append(("login", "not logged in (log in: tapis_agent.login())"))
        if self.state_dir is not None:
            on = f" on {self.state_dir.filesystem}" if self.state_dir.filesystem else ""
            rows.append(("state", f"{self.state_dir.path}{on}"))
            locks = self.state_dir.lock_method
            if locks == "lockfile":
                locks = "lock files" + (f" ({self.state_dir.lock_reason})" if self.state_dir.lock_reason else "")
            rows.append(("locks", locks))
        rows.append(("systems", f"{self.systems_total} cached"))
        lines = [f"{key:<9} {value}" for key, value in rows]
        sw = max((len(c.system) for c in self.systems), default=0)
        uw = max((len(c.user) for c in self.systems), default=0)
        stw = max((len(c.state) for c in self.systems), default=0)
        for c in self.systems:
            ago = "just now" if c.checked_at >= now else f"{_span((now - c.checked_at).total_seconds())} ago"
            lines.append(f"  {c.system:<{sw}}  {c.user:<{uw}}  {c.state:<{stw}}  checked {ago}")
        if self.systems_total > len(self.systems):
            lines.append(f"  ... {self.systems_total - len(self.systems)} more")
        return "\n".join(lines)


def _span(secs: float) -> str:
    """A duration in its two largest units, as ``tapis-cred`` writes it:
    ``42 s``, ``5 min``, ``3 h 12 min``, ``2 d 4 h``."""
    s = int(secs)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        m = s % 3600 // 60
        return f"{s // 3600} h" + (f" {m} min" if m else "")
    h = s % 86400 // 3600
    return f"{s // 86400} d" + (f" {h} h" if h else "")


def _human(when: datetime) -> str:
    """Minute precision for people: ``2026-11-23 18:00 UTC``."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _left(now: datetime, until: datetime) -> str:
    secs = (until - now).total_seconds()
    return f"{_span(secs)} left" if secs >= 0 else f"expired {_span(-secs)} ago"


def _until(when: datetime) -> str:
    return f"{_human(when)} ({_left(_now(), when)})"


def _now() -> datetime:
    """Now in whole seconds, as the agent and ``tapis-cred`` count."""
    return datetime.fromtimestamp(int(time.time()), timezone.utc)


class _Fields:
    """One object of a ``--json`` document, read strictly: a field that is
    missing, or of another type than docs/tapis-cred.schema.json gives, raises
    :class:`UnexpectedOutput` naming it (``login.expires_at``) rather than
    becoming a quiet ``""`` or ``0``."""

    def __init__(self, fields: object, document: str, path: str = "") -> None:
        self.document = document
        self.path = path
        if not isinstance(fields, dict):
            raise UnexpectedOutput(document, path or "the document", "holds no object")
        self.fields: dict[str, Any] = fields

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, types: tuple[type, ...], nullable: bool) -> Any:
        if key not in self.fields:
            raise UnexpectedOutput(self.document, self._name(key), "lacks the field")
        value = self.fields[key]
        if value is None and nullable:
            return None
        # bool is an int in Python, not in JSON.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            kinds = " or ".join(t.__name__ for t in types) + (" or null" if nullable else "")
            raise UnexpectedOutput(self.document, self._name(key), f"holds {value!r}, not {kinds}, in the field")
        return value

    def text(self, key: str) -> str:
        return self._get(key, (str,), False)  # type: ignore[no-any-return]

    def opt_text(self, key: str) -> str | None:
        return self._get(key, (str,), True)  # type: ignore[no-any-return]

    def integer(self, key: str) -> int:
        return self._get(key, (int,), False)  # type: ignore[no-any-return]

    def flag(self, key: str) -> bool:
        return self._get(key, (bool,), False)  # type: ignore[no-any-return]

    def opt_flag(self, key: str) -> bool | None:
        return self._get(key, (bool,), True)  # type: ignore[no-any-return]

    def obj(self, key: str) -> _Fields:
        return _Fields(self._get(key, (dict,), False), self.document, self._name(key))

    def objs(self, key: str) -> list[_Fields]:
        items: list[Any] = self._get(key, (list,), False)
        return [_Fields(e, self.document, f"{self._name(key)}[{i}]") for i, e in enumerate(items)]

    def error(self, key: str, context: str, subject: str) -> TapisAgentError | None:
        """An error object (see :func:`from_document`), or ``None`` for null."""
        value = self._get(key, (dict,), True)
        return None if value is None else from_document(value, context, subject)

    def time(self, key: str) -> datetime:
        """``KEY_unix`` (seconds), beside its RFC 3339 form ``KEY``."""
        when = self.opt_time(key)
        if when is None:
            raise UnexpectedOutput(self.document, self._name(f"{key}_unix"), "holds null, not int, in the field")
        return when

    def opt_time(self, key: str) -> datetime | None:
        text = self.opt_text(key)
        unix = self._get(f"{key}_unix", (int,), True)
        if (text is None) != (unix is None):
            raise UnexpectedOutput(self.document, self._name(key), f"gives {key} and {key}_unix apart")
        if unix is None:
            return None
        try:
            return datetime.fromtimestamp(unix, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise UnexpectedOutput(
                self.document, self._name(f"{key}_unix"), f"holds {unix!r}, not a time, in the field"
            ) from None


def _parse_token(doc: dict[str, Any]) -> Token:
    """A ``token`` document."""
    f = _Fields(doc, "token")
    return Token(
        access_token=f.text("access_token"),
        expires_at=f.time("expires_at"),
        username=f.text("username"),
        base_url=f.text("base_url"),
    )


def _parse_systems(doc: dict[str, Any], command: str) -> SystemResults:
    """An ``establish``, ``check`` or ``revoke`` document."""
    results = SystemResults()
    for e in _Fields(doc, command).objs("systems"):
        system = e.text("system")
        error = e.error("error", f"{command} {system}", system)
        results.append(
            SystemResult(
                system=system, user=e.text("user"), state=e.opt_text("state"), cached=e.flag("cached"), error=error
            )
        )
    return results


def _parse_status(doc: dict[str, Any]) -> Status:
    """A ``status`` document."""
    f = _Fields(doc, "status")
    agent, login, state = f.obj("agent"), f.obj("login"), f.obj("state_dir")
    return Status(
        agent=AgentInfo(
            version=agent.text("version"),
            pid=agent.integer("pid"),
            uptime_secs=agent.integer("uptime_secs"),
            base_url=agent.text("base_url"),
        ),
        login=LoginState(
            state=login.text("state"),
            username=login.opt_text("username"),
            tenant=login.opt_text("tenant"),
            reason=login.opt_text("reason"),
            expires_at=login.opt_time("expires_at"),
            has_refresh_token=login.opt_flag("has_refresh_token"),
            refresh_expires_at=login.opt_time("refresh_expires_at"),
            next_refresh_at=login.opt_time("next_refresh_at"),
            last_refresh_error=login.opt_text("last_refresh_error"),
            refresh_problem=login.opt_text("refresh_problem"),
        ),
        systems=[
            CachedSystem(
                system=e.text("system"),
                user=e.text("user"),
                state=e.text("state"),
                checked_at=e.time("checked_at"),
            )
            for e in f.objs("systems")
        ],
        systems_total=f.integer("systems_total"),
        state_dir=StateDir(
            path=state.text("path"),
            filesystem=state.opt_text("filesystem"),
            lock_method=state.text("lock_method"),
            lock_reason=state.opt_text("lock_reason"),
        ),
    )


def _parse_login(doc: dict[str, Any]) -> Login:
    """A ``login`` document."""
    f = _Fields(doc, "login")
    return Login(
        username=f.text("username"),
        tenant=f.text("tenant"),
        expires_at=f.time("expires_at"),
        has_refresh_token=f.flag("has_refresh_token"),
        refreshable=f.flag("refreshable"),
        refresh_problem=f.opt_text("refresh_problem"),
    )


def _systems_args(systems: tuple[str | Iterable[str], ...]) -> list[str]:
    """``("a", "b")`` or ``(["a", "b"],)``: the system ids, checked."""
    flat: list[str] = []
    for item in systems:
        flat.extend([item] if isinstance(item, str) else item)
    if not flat:
        raise TapisAgentError(
            "no system given", "name at least one system, e.g. 'stampede3'", exit_code=2, kind="usage"
        )
    for s in flat:
        if not isinstance(s, str) or not s.strip():
            raise TapisAgentError(f"not a system id: {s!r}", exit_code=2, kind="usage")
    return flat


class Agent:
    """How to reach the agent: ``socket`` (default: ``TAPIS_AGENT_SOCK``, else
    the standard place), ``profile`` (the agent's ``[profiles.NAME]``, another
    tenant) and ``timeout`` (seconds to wait for an answer)."""

    def __init__(
        self,
        socket: str | None = None,
        profile: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
        progress: Progress | None = None,
    ) -> None:
        self.socket = socket
        self.profile = profile
        self.timeout = timeout
        self.progress = progress

    def __repr__(self) -> str:
        return f"Agent(socket={self.socket!r}, profile={self.profile!r}, timeout={self.timeout})"

    def _run(self, args: list[str], stdin: str | None = None) -> dict[str, Any]:
        return _cred.run(
            args, socket=self.socket, profile=self.profile, timeout=self.timeout, stdin=stdin, progress=self.progress
        )

    def base_url(self) -> str:
        """The Tapis base URL the agent talks to."""
        return self.status().agent.base_url

    def token(self, min_valid: int = 60) -> Token:
        """A token valid for at least ``min_valid`` seconds (the agent
        refreshes it when needed), and the Tapis it is for: one run of
        ``tapis-cred``. Raises :class:`NotLoggedIn` if there is no login or it
        cannot be refreshed."""
        if isinstance(min_valid, bool) or not isinstance(min_valid, int) or min_valid < 0:
            raise TapisAgentError(
                f"min_valid must be a number of seconds >= 0, not {min_valid!r}", exit_code=2, kind="usage"
            )
        token = _parse_token(self._run(["token", "--min-valid", str(min_valid)]))
        if not token.access_token:
            raise UnexpectedOutput("token", "access_token", "holds an empty string in the field")
        return token

    def establish(self, *systems: str | Iterable[str], user: str | None = None, fresh: bool = False) -> SystemResults:
        """Makes sure TMS credentials exist on each system, creating them where
        missing; one result per system, in the order given
        (``print(results)`` shows one line per system).

        If any system fails, raises the error of the first failing system (in
        the order given, as ``tapis-cred``'s exit code), after every system
        was handled: its ``results`` holds all results (the others may have
        succeeded) and ``failed`` the ids that failed.
        """
        return self._systems("establish", systems, user, fresh)

    def check(self, *systems: str | Iterable[str], user: str | None = None, fresh: bool = False) -> SystemResults:
        """Each system's credential state (``present``, ``missing``,
        ``rejected``, ``host_unreachable``); changes nothing. Failures as
        :meth:`establish`."""
        return self._systems("check", systems, user, fresh)

    def revoke(self, *systems: str | Iterable[str], user: str | None = None) -> SystemResults:
        """Removes the credentials (idempotent) and forgets the cache entry.
        Failures as :meth:`establish`."""
        return self._systems("revoke", systems, user, None)

    def _systems(
        self,
        command: str,
        systems: tuple[str | Iterable[str], ...],
        user: str | None,
        fresh: bool | None,
    ) -> SystemResults:
        args = [command, *_systems_args(systems)]
        if user:
            args += ["--user", user]
        if fresh:
            args.append("--fresh")
        doc = self._run(args)
        results = _parse_systems(doc, command)
        failed = [r for r in results if r.error is not None]
        if failed:
            first = failed[0].error
            assert first is not None
            others = ", ".join(f"{r.system} ({r.error.kind})" for r in failed[1:] if r.error)
            raised = first.with_message(f"{first.message} (also failed: {others})" if others else first.message)
            raised.results = results
            raised.failed = [r.system for r in failed]
            raise raised
        if doc.get("ok") is False:
            code = doc.get("exit_code")
            code = code if isinstance(code, int) and not isinstance(code, bool) and code > 0 else 1
            raise TapisAgentError(f"{command}: failed (exit code {code})", exit_code=code)
        return results

    def status(self) -> Status:
        """The agent, the login, the token's expiry and the cached systems.
        Works whether or not anyone is logged in."""
        return _parse_status(self._run(["status"]))

    def login(self, username: str | None = None, password: str | None = None) -> Login:
        """Logs in with a password, which the agent uses once and forgets.

        Without ``username``: the user of the agent's last login, else asked
        with ``input()``. Without ``password``: asked with ``getpass`` (no
        echo; works in Jupyter, which has no terminal). The password goes to
        ``tapis-cred`` on its standard input, never on a command line or in
        the environment.
        """
        if not username:
            username = self.status().login.username or builtins.input("Tapis username: ").strip()
        if not username:
            raise TapisAgentError("login: no username", "tapis_agent.login('your-username')", exit_code=2, kind="usage")
        if password is None:
            password = getpass.getpass(f"Tapis password for {username}: ")
        if not password:
            raise TapisAgentError("login: empty password", exit_code=2, kind="usage")
        if "\n" in password or "\r" in password:
            raise TapisAgentError("login: the password contains a line break", exit_code=2, kind="usage")
        return _parse_login(self._run(["login", "--username", username, "--password-stdin"], stdin=password + "\n"))

    def logout(self, forget_client: bool = False) -> None:
        """Forgets the login: the agent revokes its tokens at Tapis (best
        effort), deletes them from disk and clears the credential cache.
        ``forget_client`` also deletes the agent's OAuth client."""
        self._run(["logout", "--forget-client"] if forget_client else ["logout"])


# The module-level functions of :mod:`tapis_agent`: each uses a default
# :class:`Agent`, which follows the environment as ``tapis-cred`` does.


def token(min_valid: int = 60) -> Token:
    """A token valid for at least ``min_valid`` seconds; see :meth:`Agent.token`."""
    return Agent().token(min_valid)


def establish(
    *systems: str | Iterable[str], user: str | None = None, fresh: bool = False, progress: Progress | None = None
) -> SystemResults:
    """Make sure TMS credentials exist on each system; see :meth:`Agent.establish`.
    ``progress`` (e.g. ``print``) is given a line while a wait lasts over a second."""
    return Agent(progress=progress).establish(*systems, user=user, fresh=fresh)


def check(
    *systems: str | Iterable[str], user: str | None = None, fresh: bool = False, progress: Progress | None = None
) -> SystemResults:
    """Each system's credential state; see :meth:`Agent.check`."""
    return Agent(progress=progress).check(*systems, user=user, fresh=fresh)


def revoke(*systems: str | Iterable[str], user: str | None = None, progress: Progress | None = None) -> SystemResults:
    """Remove credentials; see :meth:`Agent.revoke`."""
    return Agent(progress=progress).revoke(*systems, user=user)


def status() -> Status:
    """The agent, the login and the cached systems; ``print()`` it for the
    table ``tapis-cred status`` prints. See :meth:`Agent.status`."""
    return Agent().status()


def login(username: str | None = None, password: str | None = None) -> Login:
    """Log in, asking for what is missing; see :meth:`Agent.login`."""
    return Agent().login(username, password)


def logout(forget_client: bool = False) -> None:
    """Forget the login; see :meth:`Agent.logout`."""
    Agent().logout(forget_client)
