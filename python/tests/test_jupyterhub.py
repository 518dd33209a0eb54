"""DesignSafe's JupyterHub keeps only ``~/MyData`` (and projects, ``~/Work``)
across a server restart. Through the installed programs: ``doctor`` says when
the login will not survive, ``~/MyData/.tapis-agent`` (once created) becomes
the state directory, and after a "restart" (the agent gone, everything but
``~/MyData`` wiped) the next call has a token without logging in again."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import PASSWORD, USER, WAIT, Fake, Sandbox, installed_binary


def cred(env: dict[str, str], *args: str, stdin: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [str(installed_binary("tapis-cred")), "--json", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
        check=False,
    )
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def checks(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in cred(env, "doctor")["checks"]}


def stop_agent(env: dict[str, str]) -> None:
    """Stops the agent serving ``env``, if one runs (none is started to ask)."""
    status = cred(dict(env, TAPIS_AGENT_AUTOSTART="0"), "status")
    if not status["ok"]:
        return
    pid = int(status["agent"]["pid"])
    os.kill(pid, 15)
    deadline = time.monotonic() + WAIT
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"agent {pid} outlived SIGTERM"
        time.sleep(0.01)


@pytest.fixture
def hub(sandbox: Sandbox, fake: Fake) -> Iterator[dict[str, str]]:
    """A JupyterHub server's environment: the hub's variables, ``~/MyData``.
    XDG_STATE_HOME stays the sandbox's, where the state would be lost."""
    env = sandbox.env(fake.base_url)
    # Never contacted: only its presence matters.
    env.update(JUPYTERHUB_USER=USER, JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api")
    (sandbox.dir / "home/MyData").mkdir(mode=0o755)
    yield env
    stop_agent(env)


def test_doctor_says_the_login_is_lost_at_restart(sandbox: Sandbox, hub: dict[str, str]) -> None:
    assert cred(hub, "login", "--username", USER, "--password-stdin", stdin=PASSWORD)["ok"]
    found = checks(hub)
    assert found["state dir"]["detail"].startswith(str(sandbox.state_dir)), found["state dir"]
    restarts = found["restarts"]
    assert restarts["status"] == "warn", restarts
    assert "is lost when this JupyterHub server restarts" in restarts["detail"], restarts
    assert "mkdir -m 700 ~/MyData/.tapis-agent" in restarts["fix"], restarts
    # Off the hub, no such check.
    off = {k: v for k, v in hub.items() if not k.startswith("JUPYTERHUB_")}
    assert "restarts" not in checks(off)


def test_a_login_kept_in_mydata_survives_a_restart(sandbox: Sandbox, fake: Fake, hub: dict[str, str]) -> None:
    home = sandbox.dir / "home"
    kept = home / "MyData/.tapis-agent"
    kept.mkdir(mode=0o700)
    assert cred(hub, "login", "--username", USER, "--password-stdin", stdin=PASSWORD)["ok"]
    assert cred(hub, "establish", "stampede3", "ls6", "frontera")["ok"]
    found = checks(hub)
    assert found["restarts"]["status"] == "pass", found["restarts"]
    assert found["state dir"]["status"] == "pass", found["state dir"]
    assert cred(hub, "status")["state_dir"]["path"] == str(kept)
    # Who can read it: the directory 0700, every file in it 0600.
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    files = [p for p in kept.rglob("*") if p.is_file()]
    assert files, "nothing kept"
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    assert not sandbox.state_dir.exists()

    # The server restarts: the agent is gone, so is everything but ~/MyData.
    stop_agent(hub)
    for gone in (sandbox.dir / "run", sandbox.dir / "state", sandbox.dir / "cfg"):
        shutil.rmtree(gone, ignore_errors=True)
        gone.mkdir(mode=0o700)
    for entry in home.iterdir():
        if entry.name != "MyData":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    logins = fake.calls("create_token")

    # The first call starts a new agent, which finds the login in ~/MyData.
    token = cred(hub, "token")
    assert token["ok"], token
    assert fake.calls("create_token") == logins, "logged in again with a password"
    again = cred(hub, "establish", "stampede3", "ls6", "frontera")
    assert [s["cached"] for s in again["systems"]] == [True, True, True], again
