"""One Stasis handler per runtime, two apps behind it: routes ARI events to the inbound
app (queues, agents rung for inbound calls, missed-call callbacks) and the outbound app
(the dialer's contact and agent legs).

``StasisStart`` goes by the first Stasis argument: ``dial``, ``dial-agent`` and
``dial-amd`` to the outbound app, everything else (``inbound``, ``service``, ``callback``,
``agent``, ``cb-agent``, ``cb-customer``, and unknown arguments, which the inbound app sends back to
the dialplan) to the inbound app; ``sup`` and ``snoop`` (a supervisor's phone and snoop
channels, issue #17) to the audio app when there is one; ``crossnode`` and
``crossnode-phone`` (a leg from another node over the trunk, the phone rung for it) to the
cross-node app. Every other event goes to all of them: each ignores channels it did not
create. ``on_resync`` runs every app's hook.
"""

from __future__ import annotations

from typing import Any

from asterisk_cube.ari.crossnode import ARGS as CROSSNODE_ARGS
from asterisk_cube.ari.outbound import OUTBOUND_ARGS
from asterisk_cube.ari.supervisor import AppSnapshot, StasisHandler, event_json, event_type

AUDIO_ARGS = ("sup", "snoop")  # asterisk_cube.audio.app: a supervisor's phone, a snoop channel


class StasisRouter:
    def __init__(
        self,
        inbound: StasisHandler,
        outbound: StasisHandler,
        audio: StasisHandler | None = None,
        crossnode: StasisHandler | None = None,
    ) -> None:
        self.inbound = inbound
        self.outbound = outbound
        self.audio = audio
        self.crossnode = crossnode

    def _first_arg(self, event: Any) -> str:
        args = event_json(event).get("args") or ()
        return str(args[0]) if args else ""

    async def on_event(self, event: Any, client: Any) -> None:
        if event_type(event) == "StasisStart":
            first = self._first_arg(event)
            if self.audio is not None and first in AUDIO_ARGS:
                target = self.audio
            elif self.crossnode is not None and first in CROSSNODE_ARGS:
                target = self.crossnode
            else:
                target = self.outbound if first in OUTBOUND_ARGS else self.inbound
            await target.on_event(event, client)
            return
        await self.outbound.on_event(event, client)
        await self.inbound.on_event(event, client)
        for app in (self.audio, self.crossnode):
            if app is not None:
                await app.on_event(event, client)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        for app in (self.inbound, self.outbound, self.audio, self.crossnode):
            if app is None:
                continue
            hook = getattr(app, "on_resync", None)
            if hook is not None:
                await hook(snapshot, client)
