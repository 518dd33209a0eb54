#!/usr/bin/env python3
"""Use tapis-agent's token from Python: no password prompt, no token file.

The agent keeps the token fresh; `tapis-cred token --min-valid 300` prints one
that is valid for at least five more minutes (exit code 3: log in first with
`tapis-cred login`). The script then builds a tapipy client with it, makes
sure TMS credentials exist on the system, and reads the system.

Usage: python3 tapis_token.py [SYSTEM]      (default: stampede3)
"""

import json
import subprocess
import sys

from tapipy.tapis import Tapis


def tapis_cred(*args):
    """Runs tapis-cred and returns its stdout; raises with its message on failure."""
    done = subprocess.run(["tapis-cred", *args], capture_output=True, text=True)
    if done.returncode != 0:
        message = done.stderr.strip() or f"exit code {done.returncode}"
        raise RuntimeError(f"tapis-cred {args[0]} failed: {message}")
    return done.stdout


def agent_token(min_valid=300):
    """An access token valid for at least `min_valid` seconds."""
    return tapis_cred("token", "--min-valid", str(min_valid)).strip()


def agent_base_url():
    """The Tapis the agent talks to, so that the SDK talks to the same one."""
    return json.loads(tapis_cred("status", "--json"))["agent"]["base_url"]


def connect():
    """A tapipy client logged in with the agent's token."""
    return Tapis(base_url=agent_base_url(), access_token=agent_token())


def main():
    system = sys.argv[1] if len(sys.argv) > 1 else "stampede3"
    t = connect()
    tapis_cred("establish", system)
    s = t.systems.getSystem(systemId=system)
    print(f"{s.id}: {s.host} ({s.defaultAuthnMethod})")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(str(e))
