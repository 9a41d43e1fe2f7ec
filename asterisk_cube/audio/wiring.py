"""Builds the audio parts for ``serve`` (``asterisk_cube.wiring`` calls :func:`build`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asterisk_cube.ari.supervisor import connected_client

from .app import AudioApp
from .listen import CallLegs, Listening
from .recorder import Recorder
from .store import StoredRecordings, retention_job


@dataclass
class AudioParts:
    listening: Listening
    recorder: Recorder
    store: StoredRecordings
    supervisor: Any = None  # the AriSupervisor, once the runtime made it

    def client(self) -> Any:
        return connected_client(self.supervisor)

    def app(self, state: Any, inbound: Any, outbound: Any, distributor: Any) -> AudioApp:
        """Connect to the runtime's ARI supervisor and the telephony adapters' hooks."""
        self.supervisor = state.supervisor

        def bridged(call_id: int, bridge_id: str) -> None:
            call = distributor.calls.get(call_id)
            line_id = getattr(call, "line_id", None)
            campaign_id = getattr(call, "campaign_id", None)
            self.recorder.bridged(call_id, bridge_id, line_id, campaign_id)

        inbound.on_bridged = bridged
        outbound.on_bridged = bridged
        return AudioApp(self.listening, self.recorder, self.recorder._task)

    def retention(self, sessions: Any):
        return retention_job(sessions, self.store)


def call_legs_of(acd: Any) -> Callable[[int], CallLegs | None]:
    """A connected call's caller and agent channels, from the distributor's memory."""

    def legs(call_id: int) -> CallLegs | None:
        call = acd.state.call(call_id)  # the distributor's live record (acd/state.py)
        if call is None or call.phase != "connected" or not call.agent_channel:
            return None
        return CallLegs(call.channel_id, call.agent_channel)

    return legs


def build(settings: Any, sessions: Any, distributor: Any) -> AudioParts:
    parts: AudioParts
    listening = Listening(lambda: parts.client(), settings.ari.app, call_legs_of(distributor))
    store = StoredRecordings(settings.ari)
    recorder = Recorder(sessions, lambda: parts.client(), store=store)
    parts = AudioParts(listening, recorder, store)
    return parts
