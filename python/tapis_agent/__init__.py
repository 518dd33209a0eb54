"""tapis-agent from Python: tokens and TMS credentials through the agent.

>>> import tapis_agent
>>> print(tapis_agent.establish("stampede3", "ls6"))  # doctest: +SKIP
>>> tapis_agent.token(min_valid=300).access_token     # doctest: +SKIP
>>> print(tapis_agent.status())                       # doctest: +SKIP

Every function runs the ``tapis-cred`` installed with this package (with
``--json``), which starts an agent when none is running. Failures raise a
:class:`TapisAgentError` subclass. The tapipy plugin is
:mod:`tapis_agent.tapipy`; drop-ins for DesignSafe's OpsUtils helpers are in
:mod:`tapis_agent.opsutils`.
"""

from .agent import (
    Agent,
    AgentInfo,
    CachedSystem,
    Login,
    LoginState,
    StateDir,
    Status,
    SystemResult,
    SystemResults,
    Token,
    check,
    establish,
    login,
    logout,
    revoke,
    status,
    token,
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
    UnexpectedOutput,
    WrongPassword,
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
    "StateDir",
    "Status",
    "SystemNotFound",
    "SystemResult",
    "SystemResults",
    "TapisAgentError",
    "TapisUnavailable",
    "Token",
    "UnexpectedOutput",
    "WrongPassword",
    "check",
    "establish",
    "login",
    "logout",
    "revoke",
    "status",
    "token",
]
