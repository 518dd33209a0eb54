#!/usr/bin/env python3
"""Use tapis-agent from Python: no password prompt, no token file, no expiry.

`pip install 'tapis-agent[tapipy]'`, log in once (`tapis-cred login`, or
`tapis_agent.login()` in a notebook), then: the tapipy plugin gives a client
whose token the agent keeps fresh, and `tapis_agent.establish` makes sure TMS
credentials exist on the system (answered from the agent's cache when known).

Usage: python3 tapis_token.py [SYSTEM]      (default: stampede3)
"""

import sys

from tapipy.tapis import Tapis

import tapis_agent


def main() -> None:
    system = sys.argv[1] if len(sys.argv) > 1 else "stampede3"
    # base_url=None: the Tapis the agent talks to.
    t = Tapis(base_url=None, plugins=["tapis_agent.tapipy"])
    result = tapis_agent.establish(system)[0]
    s = t.systems.getSystem(systemId=system)
    print(f"{s.id}: {s.host} ({s.defaultAuthnMethod}), credentials {result.state}")


if __name__ == "__main__":
    try:
        main()
    except tapis_agent.TapisAgentError as e:
        # Exit codes as tapis-cred's: 3 not logged in, 6 not TMS_KEYS, ...
        print(f"tapis-agent: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
