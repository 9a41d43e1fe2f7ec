"""One Stasis handler per runtime, two apps behind it: routes ARI events to the inbound
app (queues, agents rung for inbound calls, missed-call callbacks) and the outbound app
(the dialer's contact and agent legs).

``StasisStart`` goes by the first Stasis argument: ``dial``, ``dial-agent`` and
``dial-amd`` to the outbound app, everything else (``inbound``, ``service``, ``callback``,
``agent``, ``cb-agent``, ``cb-customer``, and unknown arguments, which the inbound app sends back to
the dialplan) to the inbound app. Every other event goes to both: each ignores channels it
did not create. ``on_resync`` runs both apps' hooks.
"""

from __future__ import annotations

from typing import Any

from asterisk_cube.ari.outbound import OUTBOUND_ARGS
from asterisk_cube.ari.supervisor import AppSnapshot, StasisHandler, event_json, event_type


class StasisRouter:
    def __init__(self, inbound: StasisHandler, outbound: StasisHandler) -> None:
        self.inbound = inbound
        self.outbound = outbound

    def _first_arg(self, event: Any) -> str:
        args = event_json(event).get("args") or ()
        return str(args[0]) if args else ""

    async def on_event(self, event: Any, client: Any) -> None:
        if event_type(event) == "StasisStart":
            target = self.outbound if self._first_arg(event) in OUTBOUND_ARGS else self.inbound
            await target.on_event(event, client)
            return
        await self.outbound.on_event(event, client)
        await self.inbound.on_event(event, client)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        for app in (self.inbound, self.outbound):
            hook = getattr(app, "on_resync", None)
            if hook is not None:
                await hook(snapshot, client)
