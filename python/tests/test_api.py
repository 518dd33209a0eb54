"""The Python API against the installed agent and the fake Tapis."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import tapis_agent
from tapis_agent import errors

from harness import PASSWORD, USER, AgentProcess, Fake, Sandbox


def test_not_logged_in_is_a_typed_error(agent: AgentProcess) -> None:
    with pytest.raises(tapis_agent.NotLoggedIn) as caught:
        tapis_agent.token()
    e = caught.value
    assert e.exit_code == 3 and e.kind == "login_required"
    assert "not logged in" in e.message
    # The hint is a step a Python caller can take, not a shell command.
    assert e.hint and "tapis_agent.login()" in e.hint and "tapis-cred login" not in e.hint, e.hint
    assert isinstance(e, tapis_agent.TapisAgentError)
    assert tapis_agent.status().login.state == "logged_out"


def test_login_token_status(agent: AgentProcess, fake: Fake) -> None:
    login = tapis_agent.login(USER, PASSWORD)
    assert (login.username, login.tenant, login.has_refresh_token) == (USER, "designsafe", True)
    tok = tapis_agent.token(min_valid=300)
    assert tok.username == USER
    assert tok.base_url == fake.base_url
    assert tok.expires_at.tzinfo is not None
    assert 300 <= tok.expires_in() <= 4 * 3600
    # The token is a JWT the fake accepts, and repr() never shows it.
    assert tok.access_token.count(".") == 2
    assert tok.access_token not in repr(tok)
    st = tapis_agent.status()
    assert st.login.state == "logged_in" and st.login.username == USER
    assert st.agent.base_url == fake.base_url and st.agent.pid == agent.proc.pid
    assert st.login.expires_at == tok.expires_at


def test_token_runs_tapis_cred_once(logged_in: AgentProcess, fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    from tapis_agent import _cred

    runs: list[list[str]] = []
    real = _cred.run

    def counted(args: list[str], **kwargs: Any) -> dict[str, Any]:
        runs.append(args)
        return real(args, **kwargs)

    monkeypatch.setattr(_cred, "run", counted)
    tok = tapis_agent.token(min_valid=60)
    assert [r[0] for r in runs] == ["token"]
    assert tok.base_url == fake.base_url


def test_establish_check_revoke(logged_in: AgentProcess, fake: Fake) -> None:
    results = tapis_agent.establish("stampede3", "ls6")
    assert [(r.system, r.user, r.state, r.cached, r.ok) for r in results] == [
        ("stampede3", USER, "created", False, True),
        ("ls6", USER, "created", False, True),
    ]
    # A list works as well as arguments; the second answer comes from the cache.
    again = tapis_agent.establish(["stampede3"])
    assert (again[0].state, again[0].cached) == ("present", True)
    assert fake.calls("createUserCredential") == 2
    revoked = tapis_agent.revoke("ls6")
    assert [(r.system, r.state) for r in revoked] == [("ls6", "revoked")]
    checked = tapis_agent.check("ls6", "stampede3", fresh=True)
    assert [(r.system, r.state, r.cached) for r in checked] == [
        ("ls6", "missing", False),
        ("stampede3", "present", False),
    ]
    cached = {s.system: s.state for s in tapis_agent.status().systems}
    assert cached["stampede3"] == "present"
    assert fake.calls("removeUserCredential") == 1


def test_multi_system_failure_raises_the_first_with_every_result(logged_in: AgentProcess, fake: Fake) -> None:
    with pytest.raises(tapis_agent.NotTmsKeys) as caught:
        tapis_agent.establish("stampede3", "corral.pki", "no-such-system", "ls6")
    e = caught.value
    assert e.exit_code == 6
    assert e.message.startswith("establish corral.pki: system uses PKI_KEYS")
    assert "also failed: no-such-system (system_not_found)" in e.message
    assert e.hint and "by hand" in e.hint
    assert e.failed == ["corral.pki", "no-such-system"]
    by_system = {r.system: r for r in e.results}
    assert [r.system for r in e.results] == ["stampede3", "corral.pki", "no-such-system", "ls6"]
    # The systems that could be established were.
    assert by_system["stampede3"].state == "created" and by_system["ls6"].state == "created"
    assert isinstance(by_system["no-such-system"].error, tapis_agent.SystemNotFound)
    assert by_system["corral.pki"].state is None
    assert fake.calls("createUserCredential") == 2


def test_one_failure_kind_per_exception(logged_in: AgentProcess, fake: Fake) -> None:
    with pytest.raises(tapis_agent.SystemNotFound) as nf:
        tapis_agent.check("no-such-system")
    assert nf.value.exit_code == 4 and nf.value.failed == ["no-such-system"]
    fake.call("POST", "/_fake/forbid", {"user": USER, "system": "ls6"})
    with pytest.raises(tapis_agent.PermissionDenied) as pd:
        tapis_agent.establish("ls6")
    assert pd.value.exit_code == 5
    fake.call("POST", "/_fake/faults", {"operation": "checkUserCredential", "kind": {"status": 503}, "times": 50})
    with pytest.raises(tapis_agent.TapisUnavailable) as tu:
        tapis_agent.establish("frontera")
    assert tu.value.exit_code == 8


def test_usage_errors_never_reach_the_agent(agent: AgentProcess) -> None:
    with pytest.raises(tapis_agent.TapisAgentError) as none:
        tapis_agent.establish()
    assert none.value.exit_code == 2 and none.value.kind == "usage"
    with pytest.raises(tapis_agent.TapisAgentError) as bad_id:
        tapis_agent.establish("bad id!")
    assert bad_id.value.exit_code == 2
    with pytest.raises(tapis_agent.TapisAgentError):
        tapis_agent.token(min_valid=-1)


def test_no_agent_is_agent_unreachable(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # A socket named explicitly is never autostarted.
    monkeypatch.setenv("TAPIS_AGENT_SOCK", str(sandbox.dir / "run/nobody.sock"))
    with pytest.raises(tapis_agent.AgentUnreachable) as caught:
        tapis_agent.status()
    assert caught.value.exit_code == 7


def test_missing_tapis_cred_is_agent_unreachable(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPIS_CRED", str(sandbox.dir / "nothing-here"))
    with pytest.raises(tapis_agent.AgentUnreachable) as caught:
        tapis_agent.status()
    assert "TAPIS_CRED" in caught.value.message


def _recording_cred(sandbox: Sandbox, real: str) -> Path:
    """A tapis-cred that records its argv and environment, then runs the real one."""
    log = sandbox.dir / "cred-calls.jsonl"
    wrapper = sandbox.dir / "tapis-cred"
    wrapper.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv, 'env': dict(os.environ)}) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}] + sys.argv[1:])\n"
    )
    wrapper.chmod(stat.S_IRWXU)
    return log


def test_login_prompts_with_getpass_and_passes_the_password_on_stdin(
    agent: AgentProcess, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapis_agent import _cred

    log = _recording_cred(sandbox, _cred.find_cred())
    monkeypatch.setenv("TAPIS_CRED", str(sandbox.dir / "tapis-cred"))
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        return USER

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    login = tapis_agent.login()
    assert login.username == USER
    assert prompts == ["Tapis username: ", f"Tapis password for {USER}: "]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("login" in c["argv"] for c in calls)
    for c in calls:
        assert PASSWORD not in " ".join(c["argv"])
        assert all(PASSWORD not in v for v in c["env"].values())
    # Logged in: the next login knows the user and asks only for the password.
    prompts.clear()
    tapis_agent.login()
    assert prompts == [f"Tapis password for {USER}: "]


def test_wrong_password_is_not_logged_in(agent: AgentProcess) -> None:
    with pytest.raises(tapis_agent.TapisAgentError) as caught:
        tapis_agent.login(USER, "wrong")
    assert PASSWORD not in str(caught.value) and "wrong" not in str(caught.value)


def test_agent_object_names_socket_and_timeout(agent: AgentProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAPIS_AGENT_SOCK")
    a = tapis_agent.Agent(socket=str(agent.socket), timeout=5)
    assert a.status().agent.pid == agent.proc.pid
    assert "socket=" in repr(a)


def test_hints_name_python_steps() -> None:
    doc = {"kind": "login_required", "code": 3, "message": "not logged in", "hint": "run: tapis-cred login"}
    assert errors.from_document(doc).hint == "log in: tapis_agent.login()"
    hint = "to replace the stored credentials: tapis-cred revoke SYSTEM, then tapis-cred establish SYSTEM"
    assert errors.python_hint(hint) == (
        'to replace the stored credentials: tapis_agent.revoke("SYSTEM"), then tapis_agent.establish("SYSTEM")'
    )
    # Steps with no Python equivalent stay: they run from a notebook with "!".
    for kept in ("start again: tapis-cred login --device", "tapis-cred doctor checks the agent"):
        assert errors.python_hint(kept) == kept


def test_error_documents_are_parsed_defensively() -> None:
    kinds = {
        "login_required": (tapis_agent.NotLoggedIn, 3),
        "system_not_found": (tapis_agent.SystemNotFound, 4),
        "permission_denied": (tapis_agent.PermissionDenied, 5),
        "not_tms_keys": (tapis_agent.NotTmsKeys, 6),
        "agent_unreachable": (tapis_agent.AgentUnreachable, 7),
        "tapis_unavailable": (tapis_agent.TapisUnavailable, 8),
        "busy": (tapis_agent.AgentBusy, 9),
        "wrong_password": (errors.WrongPassword, 10),
    }
    for kind, (cls, code) in kinds.items():
        e = errors.from_document({"kind": kind, "code": code, "message": "m", "hint": None})
        assert type(e) is cls and e.exit_code == code and e.kind == kind
        assert type(errors.from_document({"code": code})) is cls
    odds: list[object] = [None, [], "text", {"kind": 3, "code": "x", "message": None, "hint": 5}]
    for odd in odds:
        e = errors.from_document(odd)
        assert type(e) is tapis_agent.TapisAgentError and e.exit_code == 1 and e.hint is None
    assert errors.from_document({"kind": "usage", "code": 2, "message": "m"}).exit_code == 2


def test_times_are_aware_and_strict() -> None:
    from tapis_agent.agent import _Fields

    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    read = _Fields({"t": "2026-01-02T03:04:05Z", "t_unix": int(when.timestamp())}, "status").time("t")
    assert read == when and read.tzinfo is not None
    assert _Fields({"t": None, "t_unix": None}, "status").opt_time("t") is None
    for odd in ({"t": "x", "t_unix": True}, {"t_unix": 1}, {"t": "x", "t_unix": None}, {"t": None, "t_unix": None}):
        with pytest.raises(errors.UnexpectedOutput) as caught:
            _Fields(odd, "status", "login").time("t")
        assert caught.value.field.startswith("login.t"), caught.value


def test_finds_the_tapis_cred_installed_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tapis_agent import _cred

    from harness import scripts_dir

    monkeypatch.delenv("TAPIS_CRED", raising=False)
    # Not on PATH at all: found next to the interpreter.
    monkeypatch.setenv("PATH", os.defpath)
    assert Path(_cred.find_cred()) == scripts_dir() / "tapis-cred"


def test_status_prints_like_the_cli(logged_in: AgentProcess, fake: Fake) -> None:
    tapis_agent.establish("stampede3", "ls6")
    printed = str(tapis_agent.status())
    lines = printed.splitlines()
    assert "datetime" not in printed
    assert re.fullmatch(r"agent     tapis-agent \S+, pid \d+, up \d+ s", lines[0]), lines[0]
    assert lines[1] == f"tapis     {fake.base_url}"
    assert lines[2] == f"login     {USER} (designsafe)"
    token_line = r"token     valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC \((4 h|3 h 59 min) left\)"
    assert re.fullmatch(token_line, lines[3]), lines[3]
    assert lines[4].startswith("refresh   yes, valid until ")
    assert any(line.startswith("state     ") for line in lines)
    assert "systems   2 cached" in lines
    rows = [line.split() for line in lines if line.startswith("  ")]
    assert sorted(r[:3] for r in rows) == [["ls6", USER, "present"], ["stampede3", USER, "present"]], rows
    # Logged out, the table says how to log in from Python.
    tapis_agent.logout()
    assert "not logged in (log in: tapis_agent.login())" in str(tapis_agent.status())


def test_results_print_one_line_per_system(logged_in: AgentProcess) -> None:
    results = tapis_agent.establish("stampede3", "ls6")
    assert str(results) == "stampede3: created\nls6: created"
    assert str(tapis_agent.establish("ls6")) == "ls6: present (cached)"
    assert isinstance(results, list) and results[0].system == "stampede3"
    with pytest.raises(tapis_agent.NotTmsKeys) as caught:
        tapis_agent.establish("corral.pki")
    assert str(caught.value.results[0]).startswith("establish corral.pki: system uses PKI_KEYS")
    tok = tapis_agent.token()
    assert str(tok).startswith(f"token for {USER}, valid until ") and tok.access_token not in str(tok)
    assert str(tapis_agent.login(USER, PASSWORD)).startswith(f"logged in as {USER} (designsafe), token valid until ")


def test_logout_forgets_the_login(logged_in: AgentProcess) -> None:
    tapis_agent.establish("ls6")
    tapis_agent.logout()
    st = tapis_agent.status()
    assert st.login.state == "logged_out" and st.systems_total == 0
    with pytest.raises(tapis_agent.NotLoggedIn):
        tapis_agent.token()


def test_a_clean_public_namespace() -> None:
    public = {name for name in dir(tapis_agent) if not name.startswith("_")}
    assert not public & {"Iterable", "annotations", "Any", "Callable"}
    assert sorted(tapis_agent.__all__) == tapis_agent.__all__
    for name in tapis_agent.__all__:
        assert hasattr(tapis_agent, name), name
    # What is public and not in __all__ is a submodule.
    assert public - set(tapis_agent.__all__) <= {"agent", "errors", "opsutils", "tapipy", "dapi"}


def test_a_wait_over_a_second_is_reported(
    logged_in: AgentProcess, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    fake.call("POST", "/_fake/faults", {"operation": "checkUserCredential", "kind": {"delay_ms": 1500}, "times": 1})
    lines: list[str] = []
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="tapis_agent"):
        results = tapis_agent.establish("stampede3", progress=lines.append)
    assert results[0].state == "created"
    assert time.monotonic() - started >= 1.5
    assert lines == ["establish stampede3: waiting for the agent for 1 s"]
    assert [r.getMessage() for r in caplog.records if r.name == "tapis_agent"] == lines
    # A quick answer reports nothing.
    lines.clear()
    tapis_agent.establish("stampede3", progress=lines.append)
    assert lines == []


def test_a_failing_progress_callable_ends_the_wait(logged_in: AgentProcess, fake: Fake) -> None:
    fake.call("POST", "/_fake/faults", {"operation": "checkUserCredential", "kind": {"delay_ms": 3000}, "times": 1})

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        tapis_agent.establish("ls6", progress=interrupt)
    assert time.monotonic() - started < 2.5
