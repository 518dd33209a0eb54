"""Processes for the Python suite and the plugin benchmark: the fake Tapis
(``target/debug/fake-tapis``), an agent from the installed package, and a
sandbox of XDG directories so that nothing of this machine leaks in.

Everything waits on readiness (a line printed, a socket that accepts) within
a bound, never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: The environment as the suite started, before any fixture changed it: builds
#: need the real HOME (cargo, rustup).
ORIGINAL_ENV = dict(os.environ)
USER, PASSWORD = "testuser", "testpass"
#: Longest any single wait may take, in seconds.
WAIT = 20.0

#: Variables through which the host could leak into a test.
SCRUBBED = (
    "TAPIS_AGENT_SOCK",
    "TAPIS_AGENT_AUTOSTART",
    "TAPIS_AGENT_STATE_DIR",
    "TAPIS_BASE_URL",
    "TAPIS_PROFILE",
    "TAPIS_TOKEN_FILE",
    "TAPIS_CRED",
    "INVOCATION_ID",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "RUST_LOG",
    # On a JupyterHub server the agent may keep its state in ~/MyData.
    "JUPYTERHUB_USER",
    "JUPYTERHUB_API_URL",
)


class Missing(Exception):
    """A prerequisite of the suite is absent: the suite fails, it does not skip."""


def scripts_dir() -> Path:
    """Where this interpreter's packages put their programs (the venv's bin)."""
    return Path(sysconfig.get_path("scripts"))


def installed_binary(name: str) -> Path:
    """``tapis-agent`` or ``tapis-cred`` as installed with the package (the wheel puts them in the venv's bin)."""
    path = scripts_dir() / name
    if not os.access(path, os.X_OK):
        raise Missing(f"{path} is missing: install the package into this venv (bash scripts/test-pythons.sh does)")
    return path


def fake_binary() -> Path:
    path = Path(os.environ.get("TAPIS_FAKE_TAPIS", REPO / "target/debug/fake-tapis"))
    if not os.access(path, os.X_OK):
        raise Missing(f"{path} is missing: cargo build -p tapis-agent-tests --bin fake-tapis")
    return path


def _read_line(proc: subprocess.Popen[str], limit: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(limit):
            raise TimeoutError(f"no line from {proc.args!r} within {limit} s")
    return proc.stdout.readline()


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(WAIT)


class Fake:
    """A running fake Tapis and its control API."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(fake_binary()), "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = _read_line(self.proc, WAIT)
        if not line.startswith("listening on "):
            stop(self.proc)
            raise RuntimeError(f"fake-tapis said {line!r}")
        self.base_url = line.split(" ", 2)[2].strip()

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.call("GET", "/_fake/stats")
        return stats

    def calls(self, operation: str) -> int:
        return int(self.stats()["calls"].get(operation, 0))

    def stop(self) -> None:
        stop(self.proc)


class Sandbox:
    """A user's directories in one short temp dir (socket paths must fit in
    107 bytes): ``run/`` (XDG_RUNTIME_DIR), ``state/``, ``cfg/``, ``home/``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tp", dir="/tmp"))
        for sub in ("run", "state", "cfg", "home"):
            (self.dir / sub).mkdir(mode=0o700)

    def env(self, base_url: str) -> dict[str, str]:
        """This process's environment, scrubbed, pointed at the sandbox."""
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(
            HOME=str(self.dir / "home"),
            XDG_RUNTIME_DIR=str(self.dir / "run"),
            XDG_STATE_HOME=str(self.dir / "state"),
            XDG_CONFIG_HOME=str(self.dir / "cfg"),
            TAPIS_BASE_URL=base_url,
        )
        return env

    @property
    def default_socket(self) -> Path:
        return self.dir / "run/tapis-agent/agent.sock"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state/tapis-agent"

    def remove(self) -> None:
        """Stops what runs in the sandbox (agents ``tapis-cred`` autostarted
        there outlive the command that started them), then deletes it."""
        stop_processes_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def processes_under(path: Path) -> list[int]:
    """Pids of processes (this one aside) whose command line mentions ``path``:
    an agent names its socket there."""
    needle = str(path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(needle in arg for arg in args):
            found.append(int(entry.name))
    return found


def stop_processes_under(path: Path) -> None:
    """SIGTERM to every process under ``path``, SIGKILL to those still there
    after a few seconds."""
    pids = processes_under(path)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.01)
    for pid in pids:
        if _running(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, not reaped yet, has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(")", 1)[-1].strip().startswith("Z")


def wait_for_socket(path: Path, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + WAIT
    pause = 0.002
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the agent exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing accepts on {path} within {WAIT} s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


class AgentProcess:
    """The installed ``tapis-agent --socket``, on a sandbox's state dir."""

    def __init__(self, sandbox: Sandbox, base_url: str, env: dict[str, str]) -> None:
        self.socket = sandbox.dir / "run/agent.sock"
        self.log = open(sandbox.dir / "agent.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(installed_binary("tapis-agent")), "--socket", str(self.socket), "--base-url", base_url],
            env={**env, "TAPIS_AGENT_STATE_DIR": str(sandbox.dir / "state/agent")},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_socket(self.socket, self.proc)

    def stop(self) -> None:
        stop(self.proc)
        self.log.close()


@contextmanager
def running(ttl: int | None = None) -> Iterator[tuple[Fake, AgentProcess, dict[str, str]]]:
    """A fake, an agent against it, and the environment that reaches them
    (``TAPIS_AGENT_SOCK`` set): for the benchmark, outside pytest."""
    fake = Fake(*(["--token-ttl", str(ttl)] if ttl else []))
    sandbox = Sandbox()
    try:
        env = sandbox.env(fake.base_url)
        agent = AgentProcess(sandbox, fake.base_url, env)
        try:
            yield fake, agent, {**env, "TAPIS_AGENT_SOCK": str(agent.socket)}
        finally:
            agent.stop()
    finally:
        fake.stop()
        sandbox.remove()
