"""Drop-ins for DesignSafe OpsUtils' Tapis helpers, with the same signatures.

A notebook migrates by changing its import::

    from tapis_agent.opsutils import connect_tapis, establish_tms_credentials, revoke_tms_credentials

The login lives in the agent (no token file, no prompt once logged in), the
returned client carries the :mod:`tapis_agent.tapipy` plugin (its token never
expires under it), and the printed lines say what really happened: a system
that does not use TMS keys raises :class:`~tapis_agent.NotTmsKeys` instead of
printing "Established". ``connect_tapis`` returns ``None`` where the original
does (a cancelled or refused login); every other failure raises a
:class:`~tapis_agent.TapisAgentError` subclass.
"""

from __future__ import annotations

import builtins
import getpass
from datetime import timedelta
from typing import Any

from .agent import Agent, Token
from .errors import NotLoggedIn
from .tapipy import same_tapis


def _tapis_class() -> Any:
    try:
        from tapipy.tapis import Tapis
    except ImportError:
        raise ImportError("tapis_agent.opsutils needs tapipy: pip install 'tapis-agent[tapipy]'") from None
    return Tapis


def _print_expiry(token: Token) -> None:
    left = timedelta(seconds=max(0, int(token.expires_in())))
    print(f" Token expires at: {token.expires_at.isoformat()}")
    print(f" Token expires in: {left}")


#: Refused passwords before :func:`connect_tapis` gives up (the original asks forever).
MAX_LOGIN_ATTEMPTS = 3


def _prompt_login(agent: Agent, username: str, password: str) -> bool:
    """The original's login prompts (OpsUtils ``connect_tapis`` 1.2 and its
    ``getTokensLoop``): a blank username cancels, a blank password asks for
    the username again, a refused password prints the original's warning and
    asks again, here at most :data:`MAX_LOGIN_ATTEMPTS` times. Returns whether
    the agent is logged in."""
    refused = 0
    while True:
        name = username or builtins.input("Username: ").strip()
        if not name:
            print(" Login aborted: Blank Username!")
            return False
        secret = password or getpass.getpass(f"Password for {name} (leave blank to re-enter username): ")
        password = ""
        if not secret:
            print(" Blank password entered → restarting (you can correct the username).")
            username = ""
            continue
        try:
            agent.login(name, secret)
            return True
        except NotLoggedIn as e:
            refused += 1
            print(f" ** Warning ** could NOT get token : {e.message}\n TRY AGAIN!")
            if refused >= MAX_LOGIN_ATTEMPTS:
                print(f" Login aborted: {refused} attempts refused.")
                return False
            username = name


def connect_tapis(
    token_filePath: str = "~/.tapis_tokens.json",  # noqa: N803 - the original's name
    base_url: str = "https://designsafe.tapis.io",
    username: str = "",
    password: str = "",
    force_connect: bool = False,
) -> Any:
    """A ``tapipy.tapis.Tapis`` for ``base_url`` whose token the agent keeps
    fresh, or ``None`` when the login is cancelled or refused, as the
    original (scripts test ``if t:``).

    Uses the agent's login when there is one; otherwise (or with
    ``force_connect``) logs in through the agent with ``username`` and
    ``password``, asking for what is missing like the original: a blank
    username cancels (``None``), a blank password asks for the username
    again, a refused password prints ``** Warning ** could NOT get token``
    and asks again, at most :data:`MAX_LOGIN_ATTEMPTS` times.
    ``token_filePath`` is accepted for compatibility and not read: the agent
    holds the login (its config ``export_token_file = true`` keeps that file
    fresh for other tools). Raises :class:`~tapis_agent.TapisAgentError` when
    the agent talks to another Tapis than ``base_url`` or cannot be reached.
    """
    del token_filePath
    agent = Agent()
    print(" -- Checking Tapis token --")
    same_tapis(agent, base_url)
    login = agent.status().login
    fresh_login = force_connect or login.state != "logged_in"
    if fresh_login:
        if login.state == "login_required":
            print(f" The agent's login needs renewing: {login.reason or 'token expired'}")
        elif force_connect:
            print(" Forcing a connection to Tapis (fresh login).")
        else:
            print(" Not logged in to the agent yet.")
        print(" Leave username blank to cancel.")
        if not _prompt_login(agent, username, password):
            return None
    # Valid now is all a client needs: the plugin keeps it valid from here.
    token = agent.token(min_valid=0)
    if fresh_login:
        print(f" Logged in as {token.username} through tapis-agent.")
    else:
        print(f" Token from tapis-agent for {token.username}: still valid!")
    _print_expiry(token)
    if agent.status().login.has_refresh_token:
        print(" The agent refreshes it before it expires.")
    else:
        print(" The agent cannot refresh it: log in with a password to stay logged in.")
    t = _tapis_class()(base_url=base_url, plugins=["tapis_agent.tapipy"])
    print("-- LOG IN SUCCESSFUL! --")
    return t


def _agent_for(tapis: Any) -> Agent:
    """The agent, checked against the client's Tapis. A wait over a second
    is printed (``establish stampede3: waiting for the agent for 4 s``), so a
    notebook cell never sits silent."""
    agent = Agent(progress=lambda line: print(f" {line}"))
    same_tapis(agent, getattr(tapis, "base_url", None))
    return agent


def establish_tms_credentials(tapis: Any, system_id: str, username: str) -> None:
    """Make sure ``username`` has TMS credentials on ``system_id``, creating
    them when missing, and print what happened.

    Raises :class:`~tapis_agent.NotTmsKeys` for a system that does not use
    TMS keys (nothing can be created there), and the other
    :class:`~tapis_agent.TapisAgentError` subclasses for other failures.
    """
    print(" -- TMS User Credentials --")
    print("username:", username)
    print("system_id:", system_id)
    result = _agent_for(tapis).establish(system_id, user=username or None)[0]
    user = result.user or username
    if result.state == "present":
        print(f"Found {user}'s system credentials." + (" (cached)" if result.cached else ""))
        return
    if result.state == "recreated":
        print(f"Tapis rejected {user}'s stored system credentials.")
    else:
        print(f"User {user} is missing system credentials.")
    print("Establishing new credentials")
    print(f"Established {user}'s system credentials.")
    print("-- CREDENTIALS ESTABLISHED SUCCESSFULLY!!! --")


def revoke_tms_credentials(tapis: Any, system_id: str, username: str) -> None:
    """Remove ``username``'s credentials from ``system_id`` (idempotent)."""
    _agent_for(tapis).revoke(system_id, user=username or None)
    print("-- CREDENTIALS REMOVED SUCCESSFULLY!!! --")
