"""The live panel's model and its fan-out to the supervisors' browsers (F-M1).

One :class:`PanelFeed` per ``serve`` (a runtime component, ``components={"panel":
feed.run}``) subscribes to the hub once and merges three sources into one JSON-friendly
state:

* the call distributor (``Supervision.panel_snapshot``): agents, lines, waiting and
  connected calls — on every :class:`~asterisk_cube.acd.supervision.PanelChanged`;
* the AMI monitor: device state and channels per agent endpoint, every channel and the
  connection status — on :class:`~asterisk_cube.ami.model.AmiChanged` /
  :class:`~asterisk_cube.ami.model.AmiStatusChanged`;
* outbound campaigns' pace from the database (``services.supervision.campaign_pace``),
  re-read every ``campaign_interval`` seconds while somebody watches, at once after a
  campaign action (:class:`CampaignsChanged`), and by ``GET /api/panel`` when nobody
  watches and the last read is older than that (:meth:`PanelFeed.current`), merged with
  the local dialer's in-memory view (``Dialer.snapshot``: lines ringing, answered
  contacts waiting for an agent, the pacer's last reason, "nothing to dial", the
  campaign's agents working and ready, dials per minute, the learned answer rate). The
  dialer publishes no hub events of its own, so while somebody watches and a campaign
  runs the feed re-reads it every ``live_interval`` seconds (in memory; a patch only
  goes out if something changed).

The state is a dict of sections (``agents``, ``lines``, ``calls``, ``channels``,
``campaigns``, ``ami``), each a dict of items by id. After a burst of events the feed
rebuilds the state (in memory), diffs it against the previous one and sends every
client the same pre-serialised ``patch``::

    event: patch
    data: {"seq": 42, "ts": <publish time of the oldest event in the burst>, "n": 3,
           "now": <server time>, "set": {"agents": {"7": {...}}}, "del": {"calls": ["51"]}}

A client first gets the whole state (``event: snapshot``, same ``seq`` numbering), and
again whenever it fell behind (its bounded queue overflowed: old patches are dropped, a
fresh snapshot replaces them), so a browser that reconnects or lags is never wrong for
long. Patches are sent at most every ``min_interval`` seconds (a burst is coalesced);
nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asterisk_cube.acd.supervision import AcdSnapshot, PanelChanged, Supervision
from asterisk_cube.ami.model import AmiChanged, AmiStatusChanged
from asterisk_cube.ami.monitor import AmiMonitor
from asterisk_cube.core.numbers import WITHHELD, is_withheld
from asterisk_cube.events import Event, EventHub
from asterisk_cube.logs import get_logger
from asterisk_cube.web.panel_nodes import CenterChanged, CenterView, merge

log = get_logger(__name__)

SECTIONS = ("agents", "lines", "calls", "channels", "campaigns", "ami", "nodes")
MAX_CHANNELS = 1000
CLIENT_QUEUE = 256


@dataclass(frozen=True)
class CampaignsChanged(Event):
    """Campaign figures or statuses changed (the panel re-reads them)."""


def _epoch(value: dt.datetime | None) -> float | None:
    return round(value.timestamp(), 3) if value is not None else None


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def sse(event: str, body: str) -> str:
    return f"event: {event}\ndata: {body}\n\n"


class PanelClient:
    """One browser's queue of pre-serialised SSE messages."""

    def __init__(self, feed: PanelFeed, maxsize: int = CLIENT_QUEUE) -> None:
        self.feed = feed
        self.queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(maxsize)
        self.needs_snapshot = True
        self.sent_seq = -1
        self.resyncs = 0
        self.closed = False

    def offer(self, seq: int, message: str) -> None:
        if self.needs_snapshot or self.closed:
            return
        try:
            self.queue.put_nowait((seq, message))
        except asyncio.QueueFull:
            # too slow: forget the backlog, send the whole state next
            while not self.queue.empty():
                self.queue.get_nowait()
            self.needs_snapshot = True
            self.resyncs += 1
            self.queue.put_nowait((seq, ""))  # wake the reader

    async def next(self, timeout: float | None = None) -> str | None:
        """The next SSE message to send; None when the feed closed. TimeoutError if idle."""
        if self.closed:
            return None
        while True:
            if self.needs_snapshot:
                self.needs_snapshot = False
                while not self.queue.empty():
                    self.queue.get_nowait()
                seq, message = self.feed.snapshot_message()
                self.sent_seq = seq
                return message
            item = await asyncio.wait_for(self.queue.get(), timeout)
            if item is None:
                self.closed = True
                return None
            seq, message = item
            if self.needs_snapshot or seq <= self.sent_seq or not message:
                continue
            self.sent_seq = seq
            return message

    def close(self) -> None:
        self.feed.unsubscribe(self)


def withheld_channels(snap: AcdSnapshot | None, ami: AmiMonitor | None) -> frozenset[str]:
    """The AMI channels that must not show a number: those of calls whose caller withheld
    it. AMI events carry the number Asterisk took from P-Asserted-Identity but not its
    presentation, so the caller's channel (its uniqueid is the ARI channel id), the channels
    linked to it and those in its call bridge (the agent's leg) are masked here."""
    if snap is None or ami is None:
        return frozenset()
    callers = {c.channel_id for c in snap.calls if is_withheld(c.caller)}
    if not callers:
        return frozenset()
    bridges = {  # the call's own bridge (not a holding bridge other callers wait in)
        ch.bridge
        for uid in callers
        if (ch := ami.channels.get(uid)) is not None and (ch.bridge or "").startswith("cube-call-")
    }
    return frozenset(
        uid
        for uid, ch in ami.channels.items()
        if uid in callers or ch.linkedid in callers or (ch.bridge and ch.bridge in bridges)
    )


class PanelFeed:
    def __init__(
        self,
        hub: EventHub,
        acd: Supervision | None,
        ami: AmiMonitor | None = None,
        *,
        campaigns: Callable[[], list[dict[str, Any]]] | None = None,
        dialer: Callable[[], list[dict[str, Any]]] | None = None,
        campaign_interval: float = 5.0,
        live_interval: float = 1.0,
        min_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
        center: CenterView | None = None,
    ) -> None:
        self.hub = hub
        self.center = center  # the other nodes' agents and calls (issue #14)
        self.acd = acd
        self.ami = ami
        self.campaigns_source = campaigns
        self.dialer_source = dialer
        self.campaign_interval = campaign_interval
        self.live_interval = live_interval
        self.min_interval = min_interval
        self.clock = clock
        self.clients: set[PanelClient] = set()
        self.state: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        self.seq = 0
        self.campaigns: list[dict[str, Any]] = []
        self.dirty = True
        self.patches_sent = 0
        self.events_in = 0
        self._wake = asyncio.Event()
        self._campaign_task: asyncio.Task | None = None
        self._snapshot_cache: tuple[int, str] | None = None  # (seq, the state's JSON)
        self._campaigns_read_at: float | None = None  # loop time of the last campaign read

    # ------------------------------------------------------------------ clients

    def subscribe(self, maxsize: int = CLIENT_QUEUE) -> PanelClient:
        client = PanelClient(self, maxsize)
        if not self.clients:
            self._wake.set()  # start refreshing campaigns now
        self.clients.add(client)
        if self.dirty:
            self.rebuild()
        return client

    async def subscribe_fresh(self, maxsize: int = CLIENT_QUEUE) -> PanelClient:
        """:meth:`subscribe` for a browser that just opened the panel: its first snapshot
        shows the campaigns as the database has them now. Nobody watching means nobody
        re-reads them, so without this the first snapshot showed the figures of the last
        read (minutes old) until the campaign loop's next read sent a patch."""
        await self.refresh_if_stale()
        return self.subscribe(maxsize)

    async def refresh_if_stale(self) -> None:
        """Re-read the campaign figures if the last read is older than ``campaign_interval``
        (nobody watched): for a new panel and ``GET /api/panel``."""
        if self.campaigns_source is not None:
            read_at = self._campaigns_read_at
            loop = asyncio.get_running_loop()
            if read_at is None or loop.time() - read_at >= self.campaign_interval:
                await self.refresh_campaigns()
                self.dirty = True

    def unsubscribe(self, client: PanelClient) -> None:
        self.clients.discard(client)
        client.closed = True

    def snapshot_message(self) -> tuple[int, str]:
        """The whole state as an SSE ``snapshot``. Its ``now`` is the time of sending (the
        browser sets its clock offset from it): the serialised state is cached per
        ``seq``, the time never is (a cached "now" made a panel opened after a quiet
        spell count every duration short by the spell's length until the next patch)."""
        if self.dirty:
            self.rebuild()
        if self._snapshot_cache is None or self._snapshot_cache[0] != self.seq:
            self._snapshot_cache = (self.seq, _json(self.state)[1:-1])
        head = _json({"seq": self.seq, "now": round(self.clock(), 3)})[:-1]
        state = self._snapshot_cache[1]
        return self.seq, sse("snapshot", f"{head},{state}}}" if state else head + "}")

    # ------------------------------------------------------------------ the state

    def build(self) -> dict[str, dict[str, Any]]:
        """The whole panel state now (in memory: the campaigns are the last read)."""
        ami = self.ami
        snap: AcdSnapshot | None = self.acd.panel_snapshot() if self.acd is not None else None
        state: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        by_endpoint: dict[str, list[Any]] = {}
        if ami is not None:
            for ch in ami.channels.values():
                by_endpoint.setdefault(ch.endpoint, []).append(ch)
        hidden = withheld_channels(snap, ami)
        if snap is not None:
            for a in snap.agents:
                item: dict[str, Any] = {
                    "id": a.agent_id,
                    "username": a.username,
                    "name": a.name,
                    "role": a.role,
                    "state": a.state,
                    "since": _epoch(a.since),
                    "pause_reason": a.pause_reason,
                    "pause_requested": a.pause_requested,
                    "wrap_up_until": _epoch(a.wrap_up_until),
                    "lines": list(a.chosen),
                    "permitted": list(a.permitted),
                    "blocked": a.blocked,
                    "call_id": a.call_id,
                    "endpoint": a.endpoint,
                    "device": None,
                    "device_since": None,
                    "channel": None,
                }
                if ami is not None and a.endpoint:
                    dev = ami.devices.get(a.endpoint)
                    if dev is not None:
                        item["device"], item["device_since"] = dev.state, round(dev.since, 3)
                        item["reachable"] = dev.reachable
                    chans = by_endpoint.get(a.endpoint)
                    if chans:
                        ch = max(chans, key=lambda c: c.created)
                        item["channel"] = {
                            "name": ch.name,
                            "state": ch.state,
                            "connected": WITHHELD if ch.uniqueid in hidden else ch.connected_num,
                            "answered": ch.answered and round(ch.answered, 3),
                            "count": len(chans),
                        }
                state["agents"][str(a.agent_id)] = item
            for ln in snap.lines:
                state["lines"][str(ln.line_id)] = {
                    "id": ln.line_id,
                    "did": ln.did,
                    "name": ln.name,
                    "priority": ln.priority,
                    "waiting": ln.waiting,
                    "oldest": _epoch(ln.oldest_queued_at),
                    "staffed": ln.staffed,
                    "ready": ln.ready,
                }
            for c in snap.calls:
                state["calls"][str(c.call_id)] = {
                    "id": c.call_id,
                    "direction": c.direction,
                    "kind": c.kind,
                    "phase": c.phase,
                    "line_id": c.line_id,
                    "campaign_id": c.campaign_id,
                    "caller": c.caller,
                    "did": c.did,
                    "queued_at": _epoch(c.queued_at),
                    "offered_at": _epoch(c.offered_at),
                    "answered_at": _epoch(c.answered_at),
                    "agent_id": c.agent_id,
                }
        if ami is not None:
            chans = sorted(ami.channels.values(), key=lambda ch: ch.created)[:MAX_CHANNELS]
            for ch in chans:
                state["channels"][ch.uniqueid] = {
                    "id": ch.uniqueid,
                    "name": ch.name,
                    "state": ch.state,
                    "caller": WITHHELD if ch.uniqueid in hidden else ch.caller_num,
                    "connected": WITHHELD if ch.uniqueid in hidden else ch.connected_num,
                    "created": round(ch.created, 3),
                    "answered": ch.answered and round(ch.answered, 3),
                    "bridge": ch.bridge,
                    "exten": ch.exten,
                }
            status = ami.status()
            status["stale_since"] = status["stale_since"] and round(status["stale_since"], 3)
            status["enabled"] = True
            state["ami"]["status"] = status
        else:
            state["ami"]["status"] = {"enabled": False, "connected": False, "stale": False}
        live: dict[int, dict[str, Any]] = {}
        if self.dialer_source is not None:
            try:
                live = {row["campaign_id"]: row for row in self.dialer_source()}
            except Exception as exc:  # the panel must not die with the dialer
                log.warning("panel_dialer_snapshot_failed", error=repr(exc))
        for row in self.campaigns:
            item = dict(row)
            run = live.get(row["campaign_id"])
            if run is not None:
                item["live"] = {
                    "lines": run.get("lines", 0),
                    "ringing": run.get("ringing", 0),
                    "waiting": run.get("waiting", 0),
                    "pacing": run.get("pacing", ""),
                    "nothing_to_dial": bool(run.get("nothing_to_dial")),
                    "agents": run.get("agents", 0),
                    "ready": run.get("ready", 0),
                    "dials_per_minute": run.get("dials_per_minute", 0.0),
                    "answer_rate": run.get("answer_rate"),
                }
            state["campaigns"][str(row["campaign_id"])] = item
        if self.center is not None:
            merge(state, self.center.rows, self.center.me)
        return state

    def _dialing_live(self) -> bool:
        return self.dialer_source is not None and any(
            row.get("status") == "running" for row in self.campaigns
        )

    def rebuild(self) -> dict[str, Any] | None:
        """Rebuild the state; the patch from the previous one (None if nothing changed)."""
        new = self.build()
        self.dirty = False
        changed: dict[str, dict[str, Any]] = {}
        removed: dict[str, list[str]] = {}
        for name in SECTIONS:
            old_items, new_items = self.state[name], new[name]
            sets = {k: v for k, v in new_items.items() if old_items.get(k) != v}
            dels = [k for k in old_items if k not in new_items]
            if sets:
                changed[name] = sets
            if dels:
                removed[name] = dels
        self.state = new
        if not changed and not removed:
            return None
        self.seq += 1
        return {"set": changed, "del": removed}

    def publish(self, first_ts: float | None = None, count: int = 0) -> bool:
        """Rebuild and send the patch to every client; False if nothing changed."""
        patch = self.rebuild()
        if patch is None:
            return False
        body = {"seq": self.seq, "ts": first_ts, "n": count, "now": round(self.clock(), 6)}
        message = sse("patch", _json({**body, **patch}))
        for client in list(self.clients):
            client.offer(self.seq, message)
        self.patches_sent += 1
        return True

    # ------------------------------------------------------------------ campaigns

    async def refresh_campaigns(self) -> None:
        if self.campaigns_source is None:
            return
        try:
            rows = await asyncio.to_thread(self.campaigns_source)
        except Exception as exc:
            log.warning("panel_campaigns_failed", error=repr(exc))
            return
        self._campaigns_read_at = asyncio.get_running_loop().time()
        if rows != self.campaigns:
            self.campaigns = rows
            self.hub.publish(CampaignsChanged())

    async def current(self) -> tuple[int, str]:
        """The whole state now, for ``GET /api/panel``. With no SSE client the campaign
        loop sleeps and nothing rebuilds the state, so stale campaign figures are read
        first and the state is rebuilt (issue #14; the dialer's live figures publish no
        events)."""
        await self.refresh_if_stale()
        if not self.clients:
            self.dirty = True
        return self.snapshot_message()

    async def _campaign_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_db = 0.0
        while True:
            if not self.clients:
                await self._wake.wait()
                self._wake.clear()
                next_db = 0.0
                continue
            if loop.time() >= next_db or self._wake.is_set():
                self._wake.clear()
                await self.refresh_campaigns()
                next_db = loop.time() + self.campaign_interval
            elif self._dialing_live():
                self.hub.publish(CampaignsChanged())  # sample the dialer's lines
            wait = next_db - loop.time()
            if self._dialing_live():
                wait = min(wait, self.live_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.01))

    def campaigns_touched(self) -> None:
        """A campaign action happened: re-read the figures now."""
        self._wake.set()

    # ------------------------------------------------------------------ the loop

    async def run(self, state: Any = None) -> None:
        """The component: follow the hub until cancelled (or the hub closes)."""
        sub = self.hub.subscribe(
            PanelChanged,
            AmiChanged,
            AmiStatusChanged,
            CampaignsChanged,
            CenterChanged,
            maxsize=4096,
            name="panel-feed",
        )
        self._campaign_task = asyncio.get_running_loop().create_task(
            self._campaign_loop(), name="panel-campaigns"
        )
        loop = asyncio.get_running_loop()
        last_sent = 0.0
        try:
            while True:
                try:
                    event = await sub.get()
                except EOFError:
                    return
                first_ts, count = event.ts, 1
                wait = last_sent + self.min_interval - loop.time()
                if wait > 0 and self.clients:
                    await asyncio.sleep(wait)  # coalesce a burst
                while (more := sub.get_nowait()) is not None:
                    first_ts = min(first_ts, more.ts)
                    count += 1
                sub.take_stale()  # we rebuild the whole state anyway
                self.events_in += count
                if not self.clients:
                    self.dirty = True
                    continue
                try:
                    if self.publish(first_ts, count):
                        last_sent = loop.time()
                except Exception:  # a panel bug must not take serve (and the calls) down
                    log.exception("panel_publish_failed")
                    self.dirty = True
        finally:
            sub.close()
            if self._campaign_task is not None:
                self._campaign_task.cancel()
            self.close()

    def close(self) -> None:
        for client in list(self.clients):
            client.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)
        self.clients.clear()
