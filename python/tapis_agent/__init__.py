"""tapis-agent from Python: tokens and TMS credentials through the agent.

>>> import tapis_agent
>>> tapis_agent.establish("stampede3", "ls6")       # doctest: +SKIP
>>> tapis_agent.token(min_valid=300).access_token   # doctest: +SKIP

Every function runs the ``tapis-cred`` installed with this package (with
``--json``), which starts an agent when none is running. Failures raise a
:class:`TapisAgentError` subclass. The tapipy plugin is
:mod:`tapis_agent.tapipy`; drop-ins for DesignSafe's OpsUtils helpers are in
:mod:`tapis_agent.opsutils`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .agent import (
    Agent,
    AgentInfo,
    CachedSystem,
    Login,
    LoginState,
    Status,
    SystemResult,
    Token,
)
from .errors import (
    AgentBusy,
    AgentUnreachable,
    NotLoggedIn,
    NotTmsKeys,
    PermissionDenied,
    SystemNotFound,
    TapisAgentError,
    TapisUnavailable,
)

__all__ = [
    "Agent",
    "AgentBusy",
    "AgentInfo",
    "AgentUnreachable",
    "CachedSystem",
    "Login",
    "LoginState",
    "NotLoggedIn",
    "NotTmsKeys",
    "PermissionDenied",
    "Status",
    "SystemNotFound",
    "SystemResult",
    "TapisAgentError",
    "TapisUnavailable",
    "Token",
    "check",
    "establish",
    "login",
    "revoke",
    "status",
    "token",
]


def token(min_valid: int = 60) -> Token:
    """A token valid for at least ``min_valid`` seconds; see :meth:`Agent.token`."""
    return Agent().token(min_valid)


def establish(*systems: str | Iterable[str], user: str | None = None, fresh: bool = False) -> list[SystemResult]:
    """Make sure TMS credentials exist on each system; see :meth:`Agent.establish`."""
    return Agent().establish(*systems, user=user, fresh=fresh)


def check(*systems: str | Iterable[str], user: str | None = None, fresh: bool = False) -> list[SystemResult]:
    """Each system's credential state; see :meth:`Agent.check`."""
    return Agent().check(*systems, user=user, fresh=fresh)


def revoke(*systems: str | Iterable[str], user: str | None = None) -> list[SystemResult]:
    """Remove credentials; see :meth:`Agent.revoke`."""
    return Agent().revoke(*systems, user=user)


def status() -> Status:
    """The agent, the login and the cached systems; see :meth:`Agent.status`."""
    return Agent().status()


def login(username: str | None = None, password: str | None = None) -> Login:
    """Log in, asking for what is missing; see :meth:`Agent.login`."""
    return Agent().login(username, password)
