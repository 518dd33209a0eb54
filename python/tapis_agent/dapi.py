"""dapi with the agent: a ``DSClient`` in one line.

    from tapis_agent.dapi import client
    ds = client()

DesignSafe's dapi (``pip install dapi``) logs in with a password and, on every
``DSClient()``, checks or creates TMS credentials on frontera, stampede3 and
ls6 itself: a ``getSystem`` and a credential check (an SSH by Tapis) per
system. :func:`client` builds the ``DSClient`` on a ``tapipy`` client that
carries the :mod:`tapis_agent.tapipy` plugin (its token never expires) and
answers that TMS setup through the agent: cached, shared with every other
tool, no Tapis call at all when the agent knows the answer.

How it hooks in: ``DSClient.__init__`` calls
``dapi.systems.setup_tms_credentials(self.tapis)``; while :func:`client`
builds its ``DSClient``, that call, for its own client only, is answered by
:func:`setup_tms_credentials` here. A dapi without that function gets a
plain ``DSClient`` on the plugin client (dapi then does its own setup).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from .agent import Agent, SystemResult
from .errors import TapisAgentError
from .tapipy import same_tapis

#: dapi's answer per system, from the agent's state.
_DAPI_STATE = {"present": "ready", "created": "created", "recreated": "created"}

_hooking = threading.Lock()


def _dapi() -> Any:
    try:
        import dapi
        import dapi.systems
    except ImportError:
        raise ImportError("tapis_agent.dapi needs dapi: pip install dapi") from None
    return dapi


def setup_tms_credentials(t: Any, systems: Iterable[str] | None = None, agent: Agent | None = None) -> dict[str, str]:
    """dapi's ``setup_tms_credentials``, answered by the agent: each system
    (default: dapi's ``TACC_SYSTEMS``) maps to ``"ready"`` (credentials
    present), ``"created"``, or ``"skipped"`` (not a TMS_KEYS system, or any
    failure, as dapi does), and dapi's summary is logged to its logger.
    ``t`` is the ``tapipy`` client; it must talk to the agent's Tapis."""
    agent = agent or Agent()
    same_tapis(agent, getattr(t, "base_url", None))
    ids = list(systems) if systems is not None else list(_dapi().systems.TACC_SYSTEMS)
    results: list[SystemResult]
    try:
        results = agent.establish(ids)
    except TapisAgentError as e:
        if not e.results:
            raise
        results = e.results
    by_id = {r.system: _DAPI_STATE.get(r.state or "", "skipped") for r in results}
    answer = {s: by_id.get(s, "skipped") for s in ids}
    log = logging.getLogger("dapi.systems")
    ready = [s for s, v in answer.items() if v in ("ready", "created")]
    created = [s for s, v in answer.items() if v == "created"]
    skipped = [s for s, v in answer.items() if v == "skipped"]
    if ready:
        log.info(
            "TMS credentials ready: %s%s",
            ", ".join(ready),
            f" (newly created: {', '.join(created)})" if created else "",
        )
    for r in results:
        if r.error is not None:
            log.debug("TMS credentials skipped: %s", r.error.message)
    if skipped:
        log.debug("TMS credentials skipped: %s", ", ".join(skipped))
    return answer


def client(
    systems: Iterable[str] | None = None,
    agent: Agent | None = None,
    **dsclient_kwargs: Any,
) -> Any:
    """A ``dapi.DSClient`` whose Tapis client never expires and whose TMS
    setup the agent answers (``systems``: default dapi's ``TACC_SYSTEMS``,
    frontera, stampede3 and ls6). ``agent`` picks another socket or profile;
    other keyword arguments go to ``DSClient``. Raises
    :class:`~tapis_agent.NotLoggedIn` when the agent has no login
    (``tapis_agent.login()`` first)."""
    dapi = _dapi()
    from tapipy.tapis import Tapis

    agent = agent or Agent()
    login = agent.status().login
    # A tenant_id spares tapipy its tenants lookup at construction.
    t = Tapis(
        base_url=None,
        tenant_id=login.tenant or None,
        plugins=["tapis_agent.tapipy"],
        tapis_agent=agent,
    )
    wanted = list(systems) if systems is not None else None
    hooks = dapi.systems
    original = getattr(hooks, "setup_tms_credentials", None)
    if original is None:
        return dapi.DSClient(tapis_client=t, **dsclient_kwargs)

    def setup(client: Any, systems: Iterable[str] | None = None) -> Any:
        if client is not t:
            return original(client, systems)
        return setup_tms_credentials(t, systems if systems is not None else wanted, agent)

    with _hooking:
        hooks.setup_tms_credentials = setup
        try:
            return dapi.DSClient(tapis_client=t, **dsclient_kwargs)
        finally:
            hooks.setup_tms_credentials = original
