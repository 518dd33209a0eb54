"""The distributable wheel: its tag, its contents, and a fresh venv that
has nothing but the wheel — the first call there starts an agent itself.
Also the sdist and pip from a checkout. All of them need the wheel built:
``release`` tests, run by scripts/test-release.sh."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import (
    ORIGINAL_ENV,
    PASSWORD,
    REPO,
    USER,
    WAIT,
    Fake,
    Sandbox,
    processes_under,
    stop_processes_under,
)

pytestmark = pytest.mark.release

#: This machine's CPU: x86_64 or aarch64, as the wheels' tags spell it.
CPU = platform.machine()
#: glibc 2.17 (CentOS 7, e.g. Frontera's login nodes), under both its names.
POLICY = f"manylinux_2_17_{CPU}"
TAG = f"py3-none-manylinux2014_{CPU}.{POLICY}"
#: The only directories on PATH in the fresh venv's tests: no cargo, no other venv.
SYSTEM_PATH = "/usr/bin:/bin"
#: A pip install from a checkout compiles everything: generous, but bounded.
BUILD_TIMEOUT = 1200
#: ``python -m venv`` runs ensurepip, which takes its time on a loaded machine.
VENV_TIMEOUT = 120


def wheel() -> Path:
    """This machine's wheel scripts/build-wheel.sh built (``$TAPIS_WHEEL`` names another)."""
    named = os.environ.get("TAPIS_WHEEL")
    if named:
        return Path(named)
    found = sorted((REPO / "target/wheels").glob(f"tapis_agent-*_{CPU}.whl"))
    assert len(found) == 1, f"expected one {CPU} wheel in target/wheels (bash scripts/build-wheel.sh), found {found}"
    return found[0]


def run(argv: list[str | Path], env: dict[str, str], stdin: str = "", timeout: float = WAIT) -> str:
    done = subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_tag_is_manylinux_2_17() -> None:
    assert wheel().name.endswith(f"-{TAG}.whl"), wheel().name
    # An independent check of the binaries' symbol versions.
    shown = run([Path(sys.executable).parent / "auditwheel", "show", wheel()], dict(os.environ))
    # (Its text is wrapped to the terminal: compared with whitespace collapsed.)
    said = " ".join(shown.split())
    assert f'is consistent with the following platform tag: "{POLICY}".' in said, shown


def test_contents() -> None:
    names = set(zipfile.ZipFile(wheel()).namelist())
    for script in ("tapis-agent", "tapis-cred"):
        assert f"tapis_agent-0.1.0.data/scripts/{script}" in names
    for module in ("__init__", "_cred", "agent", "errors", "opsutils", "tapipy"):
        assert f"tapis_agent/{module}.py" in names
    assert "tapis_agent/py.typed" in names
    assert not any("tests/" in n for n in names)


def fresh_venv(where: Path, *install: str) -> Path:
    run([sys.executable, "-m", "venv", where], ORIGINAL_ENV, timeout=VENV_TIMEOUT)
    python = where / "bin/python"
    run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *install],
        ORIGINAL_ENV,
        timeout=BUILD_TIMEOUT,
    )
    return python


@pytest.fixture
def isolated(sandbox: Sandbox, fake: Fake) -> Iterator[dict[str, str]]:
    """The sandbox's environment with PATH cut to the system's and no socket named."""
    env = sandbox.env(fake.base_url)
    env["PATH"] = SYSTEM_PATH
    yield env
    # The agent the test's first call autostarted outlives it, by design.
    stop_processes_under(sandbox.dir)
    assert not processes_under(sandbox.dir), "an agent the test started is still running"


def test_a_fresh_venv_has_both_programs_and_starts_an_agent(
    tmp_path: Path, sandbox: Sandbox, fake: Fake, isolated: dict[str, str]
) -> None:
    python = fresh_venv(tmp_path / "venv", "--no-index", "--no-deps", str(wheel()))
    bin_dir = python.parent
    assert "tapis-cred 0.1.0" in run([bin_dir / "tapis-cred", "--version"], isolated)
    assert "tapis-agent 0.1.0" in run([bin_dir / "tapis-agent", "--version"], isolated)
    # No agent runs, none is on PATH, no systemd: the first call starts one
    # (tapis-agent next to tapis-cred) on the default socket.
    assert not sandbox.default_socket.exists()
    script = (
        "import json, tapis_agent, tapis_agent._cred as c\n"
        "st = tapis_agent.status()\n"
        f"tapis_agent.login({USER!r}, {PASSWORD!r})\n"
        "r = tapis_agent.establish('stampede3')[0]\n"
        "print(json.dumps({'cred': c.find_cred(), 'pid': st.agent.pid, 'base_url': st.agent.base_url,"
        " 'user': tapis_agent.token().username, 'state': r.state}))\n"
    )
    out = json.loads(run([python, "-c", script], isolated))
    assert out["cred"] == str(bin_dir / "tapis-cred")
    assert Path(f"/proc/{out['pid']}/exe").resolve() == (bin_dir / "tapis-agent").resolve()
    assert (out["base_url"], out["user"], out["state"]) == (fake.base_url, USER, "created")
    assert sandbox.default_socket.exists()
    # It outlives the process that started it, for the next notebook cell.
    again = run([python, "-c", "import tapis_agent; print(tapis_agent.status().agent.pid)"], isolated)
    assert int(again) == out["pid"]


def source_build_env() -> dict[str, str]:
    """The environment of a pip build from source, into ``target/pip-source``
    (one for both builds: the dependencies compile once).

    ``TAPIS_CHECKOUT_BUILD_FAST=1`` (scripts/test-pythons.sh sets it) compiles
    without optimisation, which is what makes these tests affordable in CI;
    the build steps are the same.
    """
    env = dict(ORIGINAL_ENV, CARGO_TARGET_DIR=str(REPO / "target/pip-source"))
    if os.environ.get("TAPIS_CHECKOUT_BUILD_FAST") == "1":
        env.update(
            CARGO_PROFILE_RELEASE_OPT_LEVEL="0",
            CARGO_PROFILE_RELEASE_LTO="false",
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS="256",
        )
    return env


def test_pip_install_from_a_checkout(tmp_path: Path, sandbox: Sandbox, fake: Fake, isolated: dict[str, str]) -> None:
    """``pip install ./python`` builds from source with pip's own maturin."""
    env = source_build_env()
    run([sys.executable, "-m", "venv", tmp_path / "venv"], env, timeout=VENV_TIMEOUT)
    python = tmp_path / "venv/bin/python"
    run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REPO / "python"],
        env,
        timeout=BUILD_TIMEOUT,
    )
    bin_dir = python.parent
    assert "tapis-cred 0.1.0" in run([bin_dir / "tapis-cred", "--version"], isolated)
    out = run([python, "-c", "import tapis_agent; print(tapis_agent.status().login.state)"], isolated)
    assert out.strip() == "logged_out"


def sdist() -> Path:
    """The source distribution scripts/build-wheel.sh wrote next to the wheels."""
    found = sorted((REPO / "target/wheels").glob("tapis_agent-*.tar.gz"))
    assert len(found) == 1, f"expected one sdist in target/wheels (bash scripts/build-wheel.sh), found {found}"
    return found[0]


def test_the_sdist_builds_and_runs_where_no_wheel_fits(
    tmp_path: Path, sandbox: Sandbox, fake: Fake, isolated: dict[str, str]
) -> None:
    """``pip install tapis_agent-*.tar.gz`` in a fresh venv: what pip does on a
    machine no wheel fits. Its own sources only (no path into the checkout):
    the build runs in pip's temporary directory, with pip's own maturin."""
    with tarfile.open(sdist()) as archive:
        names = archive.getnames()
    top = names[0].split("/")[0]
    for needed in (
        "pyproject.toml",
        "python/Cargo.toml",
        "python/Cargo.lock",
        "daemon/Cargo.toml",
        "client/Cargo.toml",
        "proto/Cargo.toml",
        "tapis_agent/__init__.py",
        # Outside every crate, embedded by the agent (daemon/src/deploy/units.rs).
        "systemd/tapis-agent.socket",
        "systemd/tapis-agent.service",
    ):
        assert f"{top}/{needed}" in names, needed
    env = source_build_env()
    run([sys.executable, "-m", "venv", tmp_path / "venv"], env, timeout=VENV_TIMEOUT)
    python = tmp_path / "venv/bin/python"
    run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-binary",
            "tapis-agent",
            sdist(),
        ],
        env,
        timeout=BUILD_TIMEOUT,
    )
    bin_dir = python.parent
    assert "tapis-agent 0.1.0" in run([bin_dir / "tapis-agent", "--version"], isolated)
    script = (
        f"import tapis_agent\ntapis_agent.login({USER!r}, {PASSWORD!r})\nprint(tapis_agent.establish('ls6')[0].state)\n"
    )
    assert run([python, "-c", script], isolated).strip() == "created"
