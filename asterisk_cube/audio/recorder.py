"""Call recording by Asterisk: an ARI bridge recording of the call's mixing bridge.

The telephony adapters tell :meth:`Recorder.bridged` when a call's customer and agent
are bridged (one line in ``ari/inbound.py`` and ``ari/outbound.py``). The recorder then,
in a task of its own (the call never waits for it):

1. takes the policy of the call's line or campaign: read in a worker thread, one SQL
   statement on a plain connection (``services.recordings.policy_for``; a line without
   one takes its campaign's), then kept per line and campaign until the configuration
   changes (recording policies are configuration, ``db.config_version``: serve's watcher
   calls :meth:`Recorder.forget_policies`);
2. if ``mode`` is ``all``: plays the consent beep or announcement to the bridge (both
   parties hear it), writes the recording's row (state ``recording``) and asks Asterisk
   to record the bridge (``POST /bridges/{id}/record``, ``wav``, name
   ``cube-<call>-<hex>``); with ``on_demand`` it waits for :meth:`Recorder.start` from
   the desk or panel.

``RecordingFinished`` sets the row ``done`` with Asterisk's duration; ``RecordingFailed``
or a refused request (unwritable directory, full disk, bridge gone) sets it ``failed``,
logs it and counts it in ``failures`` (``asterisk_cube_recording_failures_total``). The
recording ends when the bridge is destroyed (the call's release).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asterisk_cube.db.session import engine_of, transaction
from asterisk_cube.logs import get_logger
from asterisk_cube.services import recordings as svc

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = get_logger(__name__)

FORMAT = "wav"
BEEP = "sound:beep"
REQUEST_TIMEOUT = 10.0


class RecordingRefused(Exception):
    """An on-demand start that cannot be done: ``reason`` is a stable key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class BridgedCall:
    call_id: int
    bridge_id: str
    line_id: int | None
    campaign_id: int | None
    policy: svc.Policy | None = None
    recording: str | None = None  # name of the live recording, if any
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # policy read


class Recorder:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: Callable[[], Any],
        *,
        spawn: Callable[[Any], Any] | None = None,
        now: Callable[[], dt.datetime] | None = None,
        store: Any = None,
    ) -> None:
        self.sessions = sessions
        self._client = client  # () -> the connected ARI client (raises if none)
        self.store = store  # audio.store.StoredRecordings: is the file really there?
        self._spawn = spawn or self._task
        self._tasks: set[asyncio.Task] = set()
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.calls: dict[int, BridgedCall] = {}
        # (line id, campaign id) -> its policy, until the configuration changes
        self.policies: dict[tuple[int | None, int | None], svc.Policy] = {}
        self._policies_generation = 0
        self.by_name: dict[str, int] = {}  # live recording name -> call id
        self.started = 0
        self.finished = 0
        self.failures = 0
        self.failure_reasons: dict[str, int] = {}

    def _task(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # a reference until it ends (the loop keeps only weak ones)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ hooks

    def bridged(
        self, call_id: int, bridge_id: str, line_id: int | None, campaign_id: int | None
    ) -> None:
        """The call's parties are in ``bridge_id`` now. Never raises, never waits."""
        try:
            call = BridgedCall(call_id, bridge_id, line_id, campaign_id)
            self.calls[call_id] = call
            self._spawn(self._auto(call))
        except Exception as exc:  # a bug here must not touch the call
            log.warning("recording_hook_failed", call=call_id, error=repr(exc))

    def ended(self, bridge_id: str) -> None:
        for call_id, call in list(self.calls.items()):
            if call.bridge_id == bridge_id:
                self.calls.pop(call_id, None)

    async def _auto(self, call: BridgedCall) -> None:
        try:
            call.policy = await self.policy(call.line_id, call.campaign_id)
        except Exception as exc:
            self._failed(call.call_id, None, "policy", repr(exc))
            return
        finally:
            call.ready.set()
        if call.policy.mode == "all":
            await self._start(call, trigger="all", by="policy")

    async def policy(self, line_id: int | None, campaign_id: int | None) -> svc.Policy:
        """The policy for a call on ``line_id`` / of ``campaign_id``, read once until the
        configuration changes (issue #19: a worker thread and a read per bridged call)."""
        key = (line_id, campaign_id)
        policy = self.policies.get(key)
        if policy is None:
            generation = self._policies_generation
            policy = await asyncio.to_thread(self._policy, line_id, campaign_id)
            if generation == self._policies_generation:  # not read across a change
                self.policies[key] = policy
        return policy

    def forget_policies(self) -> None:
        """The configuration changed (``db.config_version``): read policies again."""
        self.policies.clear()
        self._policies_generation += 1

    def _policy(self, line_id: int | None, campaign_id: int | None) -> svc.Policy:
        # one Core read on a plain connection: no ORM session per bridged call (issue #19)
        with engine_of(self.sessions).connect() as conn:
            return svc.policy_for(conn, line_id, campaign_id)

    # --------------------------------------------------------------- on demand

    async def start(self, call_id: int, by: str) -> str:
        """Start recording a connected call whose policy allows it (``on_demand``, or
        ``all`` when its recording failed). Returns the recording's name."""
        call = self.calls.get(call_id)
        if call is None:
            raise RecordingRefused("illegal_state", f"call {call_id} is not connected")
        await asyncio.wait_for(call.ready.wait(), REQUEST_TIMEOUT)
        policy = call.policy or svc.Policy()
        if policy.mode == "off":
            raise RecordingRefused("not_permitted", "recording is off for this line or campaign")
        if call.recording is not None:
            return call.recording
        name = await self._start(call, trigger="on_demand", by=by)
        if name is None:
            raise RecordingRefused("record_failed", "Asterisk could not start the recording")
        return name

    # ------------------------------------------------------------------ start

    async def _start(self, call: BridgedCall, *, trigger: str, by: str) -> str | None:
        policy = call.policy or svc.Policy()
        name = f"cube-{call.call_id}-{uuid.uuid4().hex[:8]}"
        try:
            client = self._client()
            if policy.consent == "beep":
                await self._play(client, call.bridge_id, BEEP)
            elif policy.consent == "announcement" and policy.announcement:
                await self._play(client, call.bridge_id, policy.announcement)
            await asyncio.to_thread(self._row_started, call, name, trigger, by, policy)
            call.recording = name
            self.by_name[name] = call.call_id
            await asyncio.wait_for(
                client.bridges.record(
                    bridgeId=call.bridge_id,
                    name=name,
                    format=FORMAT,
                    ifExists="fail",
                    beep=False,
                    terminateOn="none",
                ),
                REQUEST_TIMEOUT,
            )
        except Exception as exc:
            if call.recording == name:
                call.recording = None
            self._failed(call.call_id, name, "request", _reason(exc))
            return None
        log.info("recording_requested", call=call.call_id, name=name, trigger=trigger, by=by)
        return name

    @staticmethod
    async def _play(client: Any, bridge_id: str, media: str) -> None:
        """The consent notice to everybody in the bridge (not awaited to its end: the
        recording may include it)."""
        try:
            await asyncio.wait_for(
                client.bridges.playWithId(
                    bridgeId=bridge_id, playbackId=f"cube-pb-{uuid.uuid4().hex[:12]}", media=media
                ),
                REQUEST_TIMEOUT,
            )
        except Exception as exc:
            log.warning("recording_notice_failed", bridge=bridge_id, media=media, error=repr(exc))

    def _row_started(
        self, call: BridgedCall, name: str, trigger: str, by: str, policy: svc.Policy
    ) -> None:
        with transaction(self.sessions) as s:
            svc.started(
                s,
                call_id=call.call_id,
                name=name,
                target=f"bridge:{call.bridge_id}",
                trigger=trigger,
                started_by=by,
                policy=policy,
                now=self.now(),
                fmt=FORMAT,
            )

    # ----------------------------------------------------------------- resync

    async def resync(self, bridge_ids: set[str]) -> int:
        """After a (re)connect: rows still ``recording`` whose bridge Asterisk no longer has
        ended while nobody listened (``serve`` restarted, ARI dropped). Each becomes
        ``done`` if Asterisk stored its file, else ``failed``. Returns how many."""

        def open_rows() -> list[tuple[str, str]]:
            with self.sessions() as s:
                return svc.open_recordings(s)

        settled = 0
        for name, target in await asyncio.to_thread(open_rows):
            bridge = target.removeprefix("bridge:")
            if bridge in bridge_ids or name in self.by_name:
                continue  # still recording
            there = self.store is not None and await self.store.exists(name)

            def write(name: str = name, there: bool = there) -> None:
                with transaction(self.sessions) as s:
                    error = None if there else "ended while serve was away; no file"
                    svc.finished(s, name, now=self.now(), duration=None, error=error)

            await asyncio.to_thread(write)
            settled += 1
            log.info("recording_settled", name=name, stored=there)
        return settled

    # ----------------------------------------------------------------- events

    def on_event(self, etype: str, raw: dict) -> None:
        if etype == "BridgeDestroyed":
            self.ended((raw.get("bridge") or {}).get("id", ""))
            return
        if etype not in ("RecordingStarted", "RecordingFinished", "RecordingFailed"):
            return
        rec = raw.get("recording") or {}
        name = rec.get("name", "")
        if name not in self.by_name:
            return
        if etype == "RecordingStarted":
            self.started += 1
            log.info("recording_started", name=name)
            return
        call_id = self.by_name.pop(name)
        call = self.calls.get(call_id)
        if call is not None and call.recording == name:
            call.recording = None
        if etype == "RecordingFailed":
            self._failed(call_id, name, "asterisk", str(rec.get("cause") or "failed"))
            return
        duration = rec.get("duration")
        self._spawn(
            self._write_finished(call_id, name, float(duration) if duration is not None else None)
        )

    async def _write_finished(self, call_id: int, name: str, duration: float | None) -> None:
        # Asterisk 22 reports RecordingStarted and RecordingFinished even when it could not
        # open the file (unwritable directory, full disk: only its log says so). A finished
        # recording whose stored file does not exist is a failure.
        if self.store is not None:
            try:
                there = await self.store.exists(name)
            except Exception as exc:
                log.warning("recording_check_failed", name=name, error=repr(exc))
                there = True  # cannot tell now: keep the row; playback will say
            if not there:
                self._failed(call_id, name, "asterisk", "no file written")
                return
        self.finished += 1

        def write() -> None:
            with transaction(self.sessions) as s:
                svc.finished(s, name, now=self.now(), duration=duration)

        try:
            await asyncio.to_thread(write)
        except Exception as exc:
            log.warning("recording_row_failed", name=name, error=repr(exc))
        log.info("recording_finished", name=name, duration=duration)

    def _failed(self, call_id: int, name: str | None, where: str, error: str) -> None:
        self.failures += 1
        self.failure_reasons[where] = self.failure_reasons.get(where, 0) + 1
        log.warning("recording_failed", call=call_id, name=name, where=where, error=error)
        if name is None:
            return
        self.by_name.pop(name, None)

        def write() -> None:
            with transaction(self.sessions) as s:
                svc.finished(s, name, now=self.now(), duration=None, error=f"{where}: {error}")

        async def write_async() -> None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(write)

        self._spawn(write_async())


def _reason(exc: BaseException) -> str:
    """A short reason for a refused ARI request: its HTTP status and Asterisk's message."""
    original, seen = exc, 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        response: Any = getattr(current, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            text = ""
            with contextlib.suppress(Exception):
                text = (response.json() or {}).get("message", "")
            return f"HTTP {status} {text}".strip()
        current, seen = current.__cause__ or current.__context__, seen + 1
    return repr(original)[:200]
