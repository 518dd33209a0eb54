"""The checkout as the suite sees it: python/ is a cargo workspace of its own that must build
what the root builds, and the package under test is the installed one."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before 3.11
    import tomli as tomllib

from harness import REPO


def toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def test_the_lock_has_the_roots_versions() -> None:
    def versions(lock: Path) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for p in toml(lock)["package"]:
            out.setdefault(p["name"], set()).add(p["version"])
        return out

    root, wheel = versions(REPO / "Cargo.lock"), versions(REPO / "python/Cargo.lock")
    # A subset: the wheel builds fewer crates, each at a version the root locks.
    drift = {name: sorted(v - root[name]) for name, v in wheel.items() if name in root and not v <= root[name]}
    assert not drift, f"python/Cargo.lock differs from Cargo.lock (copy it over and run cargo metadata): {drift}"
    missing = sorted(set(wheel) - set(root) - {"tapis-agent-python"})
    assert not missing, f"python/Cargo.lock has packages the root lock lacks: {missing}"


def test_the_release_profile_is_the_roots() -> None:
    root = toml(REPO / "Cargo.toml")["profile"]["release"]
    assert toml(REPO / "python/Cargo.toml")["profile"]["release"] == root


def test_the_versions_agree() -> None:
    version = toml(REPO / "Cargo.toml")["workspace"]["package"]["version"]
    assert toml(REPO / "python/Cargo.toml")["package"]["version"] == version
    assert toml(REPO / "python/pyproject.toml")["project"]["version"] == version
    assert "python" in toml(REPO / "Cargo.toml")["workspace"]["exclude"]


def test_the_suite_tests_the_installed_package() -> None:
    import tapis_agent

    assert Path(sysconfig.get_path("purelib")) in Path(tapis_agent.__file__).parents, (
        f"tapis_agent comes from {tapis_agent.__file__}, not from the venv's site-packages: "
        "run the suite as scripts/test-pythons.sh does (from the repository root)"
    )
