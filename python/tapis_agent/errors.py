"""The exceptions: one class per failure kind of ``tapis-cred`` (its exit codes).

Every error carries what ``tapis-cred`` said: ``message`` (what failed and
why), ``hint`` (what to do, or ``None``), ``exit_code`` and ``kind`` (the
stable names of docs/tapis-cred.schema.json).
"""

from __future__ import annotations

import re
from typing import Any


class TapisAgentError(Exception):
    """Any failure of the agent or of ``tapis-cred`` (exit codes 1 and 2 as such)."""

    exit_code: int = 1
    kind: str = "other"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        exit_code: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        if kind is not None:
            self.kind = kind
        # Set on failures of multi-system calls: every system's result, and
        # the ids of those that failed (see establish()).
        self.results: list[Any] = []
        self.failed: list[str] = []

    def with_message(self, message: str) -> TapisAgentError:
        """A copy of this error (same class, hint, code) saying ``message``."""
        return type(self)(message, self.hint, exit_code=self.exit_code, kind=self.kind)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class NotLoggedIn(TapisAgentError):
    """Not logged in, or the token cannot be refreshed (exit code 3): log in."""

    exit_code = 3
    kind = "login_required"


class SystemNotFound(TapisAgentError):
    """Tapis knows no such system (exit code 4)."""

    exit_code = 4
    kind = "system_not_found"


class PermissionDenied(TapisAgentError):
    """Tapis refused the operation (exit code 5)."""

    exit_code = 5
    kind = "permission_denied"


class NotTmsKeys(TapisAgentError):
    """The system does not use TMS_KEYS: no credentials can be created (exit code 6)."""

    exit_code = 6
    kind = "not_tms_keys"


class AgentUnreachable(TapisAgentError):
    """No agent answers (or it speaks another protocol version), or there is no
    ``tapis-cred`` to ask (exit code 7)."""

    exit_code = 7
    kind = "agent_unreachable"


class TapisUnavailable(TapisAgentError):
    """Tapis is unreachable or failing, after the agent's retries (exit code 8)."""

    exit_code = 8
    kind = "tapis_unavailable"


class AgentBusy(TapisAgentError):
    """The agent is at a limit (queue of one system, connections): try again (exit code 9)."""

    exit_code = 9
    kind = "busy"


class WrongPassword(NotLoggedIn):
    """Tapis refused the username or password (exit code 10); a login held
    before stays active."""

    exit_code = 10
    kind = "wrong_password"


class UnexpectedOutput(TapisAgentError, ValueError):
    """``tapis-cred``'s JSON document lacks a field this package reads, or
    holds one of another type (exit code 1): ``tapis-cred`` and this package
    are of different versions. ``field`` names it, e.g. ``login.expires_at``."""

    def __init__(self, document: str, field: str, problem: str) -> None:
        super().__init__(
            f"{document}: tapis-cred's answer {problem}: {field}",
            "tapis-cred may be another version than this package; reinstall tapis-agent",
        )
        self.document = document
        self.field = field

    def with_message(self, message: str) -> TapisAgentError:
        return TapisAgentError(message, self.hint, exit_code=self.exit_code, kind=self.kind)


_BY_KIND: dict[str, type[TapisAgentError]] = {
    cls.kind: cls
    for cls in (
        NotLoggedIn,
        SystemNotFound,
        PermissionDenied,
        NotTmsKeys,
        AgentUnreachable,
        TapisUnavailable,
        AgentBusy,
        WrongPassword,
    )
}
_BY_CODE: dict[int, type[TapisAgentError]] = {cls.exit_code: cls for cls in _BY_KIND.values()}


#: ``tapis-cred`` steps in hints, and what a Python caller does instead.
#: Steps with no Python equivalent (``--device``, ``doctor``) stay as they are:
#: they run from a notebook with ``!`` as well as in a terminal.
_PYTHON_STEPS = (
    (re.compile(r"\brun: tapis-cred login$"), "log in: tapis_agent.login()"),
    (re.compile(r"\btapis-cred login(?! --)\b"), "tapis_agent.login()"),
    (re.compile(r"\btapis-cred logout\b(?! --)"), "tapis_agent.logout()"),
    (re.compile(r"\btapis-cred (establish|check|revoke) SYSTEM\b"), r'tapis_agent.\1("SYSTEM")'),
    (re.compile(r"\btapis-cred (establish|check|revoke) takes\b"), r"tapis_agent.\1() takes"),
    (re.compile(r"\btapis-cred status\b(?! --)"), "print(tapis_agent.status())"),
    (re.compile(r"\bor with --device\b"), "or in a browser: tapis-cred login --device"),
)


def python_hint(hint: str) -> str:
    """``hint`` as a step a Python caller takes: ``run: tapis-cred login``
    becomes ``log in: tapis_agent.login()``."""
    for pattern, step in _PYTHON_STEPS:
        hint = pattern.sub(step, hint)
    return hint


def from_document(error: object, context: str = "", subject: str = "") -> TapisAgentError:
    """The exception for an ``error`` object of a ``--json`` document.

    Parsed defensively: a missing or odd field gives the generic class, never
    a second failure. ``context`` (e.g. ``"establish ls6"``) prefixes the
    message unless the message already names it or its ``subject`` (``"ls6"``).
    The hint names Python steps (:func:`python_hint`).
    """
    fields = error if isinstance(error, dict) else {}
    kind = fields.get("kind")
    code = fields.get("code")
    message = fields.get("message")
    hint = fields.get("hint")
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None and isinstance(code, int):
        cls = _BY_CODE.get(code)
    text = message if isinstance(message, str) and message else "unknown error"
    if context and not text.startswith(context) and not (subject and subject in text):
        text = f"{context}: {text}"
    return (cls or TapisAgentError)(
        text,
        python_hint(hint) if isinstance(hint, str) else None,
        exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        kind=kind if isinstance(kind, str) else None,
    )
