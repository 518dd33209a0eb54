"""Running ``tapis-cred --json``: the package's only way to the agent.

The documented JSON output (docs/tapis-cred.schema.json) is the contract; the
socket protocol stays private to the Rust programs. ``tapis-cred`` also starts
an agent when none answers on the default socket, so the first call in a
fresh container works without any setup.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import AgentUnreachable, TapisAgentError, from_document

#: Environment variable naming the ``tapis-cred`` to run (tests, unusual installs).
CRED_ENV = "TAPIS_CRED"
#: Seconds on top of ``--timeout`` before an unanswered ``tapis-cred`` is killed.
_SLACK_SECS = 15
#: A wait longer than this many seconds is reported, and again every
#: ``PROGRESS_EVERY`` seconds while it lasts.
PROGRESS_AFTER = 1.0
PROGRESS_EVERY = 3.0

#: Waits are logged here at INFO (``logging.basicConfig(level=logging.INFO)``
#: shows them), whether or not a progress callable is given.
log = logging.getLogger("tapis_agent")


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
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Runs ``tapis-cred --json ARGS`` and returns its document.

    A failure of the whole command raises its typed error; a document with
    per-system errors is returned as it is (the caller decides). ``stdin``
    is written to the program's standard input (a password, never argv).
    A wait longer than :data:`PROGRESS_AFTER` seconds is reported to
    ``progress`` (one line, e.g. ``establish stampede3: waiting for the agent
    for 4 s``) and logged, every :data:`PROGRESS_EVERY` seconds.
    """
    argv = [find_cred(), "--json", "--timeout", str(timeout)]
    if socket:
        argv += ["--socket", socket]
    if profile:
        argv += ["--profile", profile]
    argv += args
    command = args[0]
    # What the wait is for: the command and its systems, not option values.
    what = " ".join(itertools.takewhile(lambda a: not a.startswith("-"), args))
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as e:
        raise AgentUnreachable(f"{command}: cannot run {argv[0]}: {e.strerror or e}") from None
    started = time.monotonic()
    deadline = started + timeout + _SLACK_SECS
    report_at = started + PROGRESS_AFTER
    pending: str | None = stdin if stdin is not None else ""
    try:
        while True:
            try:
                out, err = proc.communicate(pending, timeout=max(0.0, min(report_at, deadline) - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                # The input went out with the first call; never send it twice.
                pending = None
                now = time.monotonic()
                if now >= deadline:
                    raise AgentUnreachable(
                        f"{command}: tapis-cred gave no answer within {timeout + _SLACK_SECS} s",
                        "tapis-cred doctor checks the agent",
                    ) from None
                line = f"{what}: waiting for the agent for {int(now - started)} s"
                log.info("%s", line)
                if progress is not None:
                    progress(line)
                report_at += PROGRESS_EVERY
    except BaseException:
        # A timeout, an interrupt (Ctrl-C in a notebook), a failing callable:
        # the command does not outlive the call.
        proc.kill()
        proc.communicate()
        raise
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        # Not the JSON contract: an old or foreign tapis-cred, or a crash.
        said = err.strip().splitlines()
        raise TapisAgentError(
            f"{command}: tapis-cred (exit code {proc.returncode}) printed no JSON document"
            + (f": {said[-1]}" if said else ""),
            f"{argv[0]} may be another version than this package; reinstall tapis-agent",
            exit_code=proc.returncode if 0 < proc.returncode < 256 else 1,
        )
    if doc.get("ok") is False and "error" in doc:
        raise from_document(doc.get("error"), command)
    return doc
