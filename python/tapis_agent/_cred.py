"""Running ``tapis-cred --json``: the package's only way to the agent.

The documented JSON output (docs/tapis-cred.schema.json) is the contract; the
socket protocol stays private to the Rust programs. ``tapis-cred`` also starts
an agent when none answers on the default socket, so the first call in a
fresh container works without any setup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from .errors import AgentUnreachable, TapisAgentError, from_document

#: Environment variable naming the ``tapis-cred`` to run (tests, unusual installs).
CRED_ENV = "TAPIS_CRED"
#: Seconds on top of ``--timeout`` before an unanswered ``tapis-cred`` is killed.
_SLACK_SECS = 15


def find_cred() -> str:
    """The ``tapis-cred`` to run: ``$TAPIS_CRED``, else the one installed with
    this package (the interpreter's scripts directory, then the user scheme's),
    else the first on ``PATH``."""
    named = os.environ.get(CRED_ENV)
    if named:
        if not os.access(named, os.X_OK):
            raise AgentUnreachable(
                f"{CRED_ENV}={named} is not an executable file",
                f"point {CRED_ENV} at a tapis-cred binary, or unset it",
            )
        return named
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        candidate = Path(scripts) / "tapis-cred"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("tapis-cred")
    if found:
        return found
    raise AgentUnreachable(
        "tapis-cred not found (not next to this Python, not on PATH)",
        "pip install tapis-agent (into this environment), or set TAPIS_CRED",
    )


def run(
    args: list[str],
    *,
    socket: str | None,
    profile: str | None,
    timeout: int,
    stdin: str | None = None,
) -> dict[str, Any]:
    """Runs ``tapis-cred --json ARGS`` and returns its document.

    A failure of the whole command raises its typed error; a document with
    per-system errors is returned as it is (the caller decides). ``stdin``
    is written to the program's standard input (a password, never argv).
    """
    argv = [find_cred(), "--json", "--timeout", str(timeout)]
    if socket:
        argv += ["--socket", socket]
    if profile:
        argv += ["--profile", profile]
    argv += args
    command = args[0]
    try:
        done = subprocess.run(
            argv,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout + _SLACK_SECS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AgentUnreachable(
            f"{command}: tapis-cred gave no answer within {timeout + _SLACK_SECS} s",
            "tapis-cred doctor checks the agent",
        ) from None
    except OSError as e:
        raise AgentUnreachable(f"{command}: cannot run {argv[0]}: {e.strerror or e}") from None
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        # Not the JSON contract: an old or foreign tapis-cred, or a crash.
        said = done.stderr.strip().splitlines()
        raise TapisAgentError(
            f"{command}: tapis-cred (exit code {done.returncode}) printed no JSON document"
            + (f": {said[-1]}" if said else ""),
            f"{argv[0]} may be another version than this package; reinstall tapis-agent",
            exit_code=done.returncode if 0 < done.returncode < 256 else 1,
        )
    if doc.get("ok") is False and "error" in doc:
        raise from_document(doc.get("error"), command)
    return doc
