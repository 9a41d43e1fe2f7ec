"""The Stasis handler of supervisor audio and recording: ARI events to :mod:`.listen`
and :mod:`.recorder`.

``StasisStart`` with first argument ``sup`` (the supervisor's phone) or ``snoop`` (a
snoop channel) comes here (``ari/router.py``); every other event comes here too and is
ignored unless it concerns a session's channel, a listened call's leg, a recording or a
bridge the recorder knows.
"""

from __future__ import annotations

from typing import Any

from asterisk_cube.ari.supervisor import AppSnapshot, event_json, event_type
from asterisk_cube.logs import get_logger

from .listen import Listening
from .recorder import Recorder

log = get_logger(__name__)

AUDIO_ARGS = ("sup", "snoop")


class AudioApp:
    def __init__(self, listening: Listening, recorder: Recorder, spawn: Any) -> None:
        self.listening = listening
        self.recorder = recorder
        self.spawn = spawn

    async def on_event(self, event: Any, client: Any) -> None:
        raw = event_json(event)
        etype = event_type(event)
        channel_id = (raw.get("channel") or {}).get("id", "")
        if etype == "StasisStart":
            self.listening.on_stasis_start(channel_id)
        elif etype in ("StasisEnd", "ChannelDestroyed"):
            self.listening.channel_gone(channel_id, self.spawn)
        else:
            self.recorder.on_event(etype, raw)

    async def on_resync(self, snapshot: AppSnapshot, client: Any) -> None:
        await self.listening.forget_all(
            client, list(snapshot.channel_ids), list(snapshot.bridge_ids)
        )
        try:
            await self.recorder.resync(set(snapshot.bridge_ids))
        except Exception as exc:  # the database or ARI away: next reconnect settles them
            log.warning("recording_resync_failed", error=repr(exc))
