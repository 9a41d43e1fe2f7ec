"""Prometheus metrics for ``GET /metrics`` (issue #15), with prometheus_client.

Almost everything is read at scrape time from what the running parts already hold
(:class:`StateCollector`): the distributor's waiting calls and agents, the dialer's
per-campaign snapshot, the supervisors' connection flags and counters, the journal's
backlog, the event hub's subscribers. Nothing is counted on the call path for those, so
metrics cost the call path nothing. The few measured values that are not state live in
histograms observed off the call path: the journal's flush latency (its worker thread)
and the event loop's lag (:class:`LoopLag`, a component that wakes twice a second).

Each ``serve`` has its own :class:`Metrics` with its own registry (no module-level
global: tests build several)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from .core import health
from .health_state import health_snapshot

PREFIX = "asterisk_cube"
LOOP_LAG_INTERVAL = 0.5


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


class StateCollector(Collector):
    """Reads the runtime state (``RuntimeState``) at scrape time."""

    def __init__(self, state: Any, clock: Any = time.monotonic) -> None:
        self.state = state
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        extras = getattr(self.state, "extras", None) or {}
        yield from self._inbound(extras.get("distributor"))
        yield from self._dialer(extras.get("dialer"))
        yield from self._process(extras)
        yield from self._readiness()

    # --- inbound and agents ------------------------------------------------------------

    def _inbound(self, distributor: Any) -> Iterator[Metric]:
        if distributor is None:
            return
        from .core import routing as rt

        now = distributor.now()
        waiting = {lw.line_id: lw for lw in rt.waiting_by_line(distributor.state.waiting())}
        calls = _gauge("inbound_calls_waiting", "Calls waiting (or offered) per line", ["line"])
        oldest = _gauge(
            "inbound_oldest_wait_seconds", "How long the longest-waiting call waits", ["line"]
        )
        for line_id, (did, _name, _timeout) in sorted(distributor.line_info.items()):
            lw = waiting.get(line_id)
            calls.add_metric([did], lw.count if lw else 0)
            age = (now - lw.oldest_queued_at).total_seconds() if lw else 0.0
            oldest.add_metric([did], max(0.0, age))
        yield calls
        yield oldest
        phases = Counter(call.phase for call in distributor.calls.values())
        live = _gauge("calls_in_progress", "Live calls by phase", ["phase"])
        for phase in ("waiting", "offered", "connecting", "connected"):
            live.add_metric([phase], phases.get(phase, 0))
        yield live
        missed = _gauge("missed_calls_open", "Missed calls nobody has handled yet")
        missed.add_metric([], len(distributor.missed))
        yield missed
        yield from self._inbound_counts(distributor)
        states: Counter[tuple[str, str]] = Counter()
        for agent in distributor.agents.values():
            st = agent.status
            states[(st.state.value, st.pause_reason or "")] += 1
        agents = _gauge("agents", "Agents per state (and pause reason)", ["state", "reason"])
        for (state, reason), n in sorted(states.items()):
            agents.add_metric([state, reason], n)
        yield agents

    def _inbound_counts(self, distributor: Any) -> Iterator[Metric]:
        """Since start, from the distributor's plain counters (one dict increment each on
        the call path)."""
        counts = getattr(distributor, "counts", None)
        if counts is None:
            return
        dids = {line_id: did for line_id, (did, _n, _t) in distributor.line_info.items()}
        names = {a.agent_id: a.username for a in distributor.agents.values()}
        per_line: Counter[tuple[str, str]] = Counter()
        per_agent: Counter[tuple[str, str]] = Counter()
        answered: Counter[tuple[str, bool]] = Counter()
        missed: Counter[str] = Counter()
        for (what, line_id, extra), n in list(counts.items()):
            line = dids.get(line_id, "") if line_id is not None else ""
            if what == "answered":
                answered[(line, bool(extra))] += n
            elif what == "missed":
                missed[line] += n
            else:
                per_line[(line, what)] += n
                per_agent[(names.get(extra, str(extra)), what)] += n
        offers = _counter(
            "inbound_offers", "Offers made (offered) and how they ended", ["line", "outcome"]
        )
        for (line, what), n in sorted(per_line.items()):
            offers.add_metric([line, what], n)
        yield offers
        agents = _counter("agent_offers", "Offers per agent and outcome", ["agent", "outcome"])
        for (agent, what), n in sorted(per_agent.items()):
            agents.add_metric([agent, what], n)
        yield agents
        total = _counter("inbound_answered", "Inbound calls answered by an agent", ["line"])
        within = _counter(
            "inbound_answered_within_service_level",
            "Answered within [metrics] service_level_seconds of arriving",
            ["line"],
        )
        lines = sorted({line for line, _ in answered})
        for line in lines:
            total.add_metric([line], answered[(line, True)] + answered[(line, False)])
            within.add_metric([line], answered[(line, True)])
        yield total
        yield within
        lost = _counter("inbound_missed", "Callers who hung up while waiting", ["line"])
        for line, n in sorted(missed.items()):
            lost.add_metric([line], n)
        yield lost
        level = _gauge("service_level_threshold_seconds", "The service-level threshold")
        level.add_metric([], distributor.service_level.total_seconds())
        yield level

    # --- dialer ---------------------------------------------------------------------------

    def _dialer(self, dialer: Any) -> Iterator[Metric]:
        if dialer is None:
            return
        rows = dialer.snapshot()
        lab = ["campaign"]
        ringing = _gauge("dialer_lines_ringing", "Outbound lines ringing", lab)
        lines = _gauge("dialer_lines", "Outbound lines in use", lab)
        answered = _gauge("dialer_answered_today", "Human answers today", lab)
        abandoned = _gauge("dialer_abandoned_today", "Abandoned calls today", lab)
        rate = _gauge("dialer_abandon_rate", "Today's abandon rate (0..1)", lab)
        pace = _gauge("dialer_dials_per_minute", "Dials per minute", lab)
        ready = _gauge("dialer_agents_ready", "Agents ready for the campaign", lab)
        reason = _gauge("dialer_pacing", "The last pacing decision's reason (1)", [*lab, "reason"])
        for row in rows:
            key = [row["campaign"]]
            ringing.add_metric(key, row["ringing"])
            lines.add_metric(key, row["lines"])
            answered.add_metric(key, row["answered_today"])
            abandoned.add_metric(key, row["abandoned_today"])
            rate.add_metric(key, row["abandon_rate"] or 0.0)
            pace.add_metric(key, row["dials_per_minute"])
            ready.add_metric(key, row["ready"])
            reason.add_metric([*key, row["pacing"] or "none"], 1)
        yield from (ringing, lines, answered, abandoned, rate, pace, ready, reason)
        # the dialer's bounded timing histograms (dialer/probes.py): connect, agent
        # answer, abandon wait, step
        for histogram in getattr(dialer, "histograms", tuple)():
            yield histogram.metric(PREFIX)

    # --- the process ----------------------------------------------------------------------

    def _process(self, extras: dict[str, Any]) -> Iterator[Metric]:
        state = self.state
        # before serve has built them (and in tools) the parts read as down, never absent
        supervisor = getattr(state, "supervisor", None)
        yield _one(
            _gauge("ari_connected", "ARI websocket connected (0/1)"),
            bool(getattr(supervisor, "connected", False)),
        )
        yield _one(
            _counter("ari_connects", "ARI connections made"), getattr(supervisor, "connects", 0)
        )
        yield _one(
            _counter("ari_events", "ARI events received"), getattr(supervisor, "events_seen", 0)
        )
        queues = getattr(supervisor, "_queues", None) or {}
        yield _one(
            _gauge("ari_dispatch_queued_events", "ARI events queued for their channel"),
            sum(len(q) for q in list(queues.values())),
        )
        yield _one(_gauge("ari_dispatch_queues", "Channels with queued ARI events"), len(queues))
        monitor = extras.get("ami")
        if monitor is not None:
            yield _one(_gauge("ami_connected", "AMI logged in (0/1)"), monitor.connected)
            yield _one(_gauge("ami_synced", "AMI model resynchronised (0/1)"), monitor.synced)
            yield _one(_counter("ami_connects", "AMI logins made"), monitor.connects)
        agi = getattr(state, "agi", None)
        yield _one(
            _gauge("agi_listening", "FastAGI server listening (0/1)"),
            bool(getattr(agi, "listening", False)),
        )
        yield _one(
            _counter("agi_sessions", "FastAGI sessions served"), getattr(agi, "sessions_total", 0)
        )
        yield _one(
            _counter("agi_rejected", "FastAGI sessions refused"), getattr(agi, "rejected_total", 0)
        )
        by_route = _counter(
            "agi_route_sessions", "FastAGI sessions by route and outcome", ["route", "outcome"]
        )
        for (route, outcome), n in sorted((getattr(agi, "session_counts", None) or {}).items()):
            by_route.add_metric([route, outcome], n)
        yield by_route
        metrics = extras.get("metrics")
        verdicts = _counter(
            "entry_decisions", "Answering-service entry decisions", ["action", "hours"]
        )
        for (action, hours), n in sorted(getattr(metrics, "entry_counts", {}).items()):
            verdicts.add_metric([action, hours], n)
        yield verdicts
        journal = getattr(extras.get("distributor"), "journal", None)
        if journal is not None:
            yield _one(_gauge("journal_pending", "Writes queued, not yet written"), journal.pending)
            yield _one(_counter("journal_written", "Writes done"), journal.written)
            yield _one(_counter("journal_failures", "Writes that failed (lost)"), journal.failures)
        hub = getattr(state, "hub", None)
        if hub is not None:
            subs = hub.subscribers
            yield _one(_counter("events_published", "Events published in-process"), hub.published)
            yield _one(
                _gauge("event_subscribers_dropped_events", "Events dropped for slow subscribers"),
                sum(s.dropped for s in subs),
            )
            yield _one(
                _gauge("event_subscribers_stale", "Subscribers that lost events"),
                sum(1 for s in subs if s.stale),
            )
            desk = sum(1 for s in subs if s.name.startswith("desk-sse-"))
            streams = _gauge("web_streams", "Open server-sent event streams", ["kind"])
            streams.add_metric(["desk"], desk)
            feed = extras.get("panel_feed")
            streams.add_metric(["panel"], len(feed.clients) if feed is not None else 0)
            yield streams
        mailer = extras.get("mailer")
        if mailer is not None:
            yield _one(_counter("mail_sent", "Notes e-mailed"), mailer.sent)
            yield _one(
                _counter("mail_failed_attempts", "Note e-mail attempts that failed"),
                mailer.failed_attempts,
            )
            yield _one(
                _gauge("mail_backlog", "Notes not mailed yet (counted at the mailer's last pass)"),
                getattr(mailer, "backlog", 0),
            )

        yield from _audio(extras)

    def _readiness(self) -> Iterator[Metric]:
        found = health.checks(health_snapshot(self.state))
        up = _gauge("ready", "Every readiness check passes (0/1)")
        up.add_metric([], 1 if health.ready(found) else 0)
        yield up
        each = _gauge("check_ok", "Each readiness check (0/1)", ["check"])
        for check in found:
            each.add_metric([check.name], 1 if check.ok else 0)
        yield each


def _audio(extras: dict[str, Any]) -> Iterator[Metric]:
    """Call recording and supervisor listening (issue #17, ``asterisk_cube.audio``)."""
    recorder = extras.get("recorder")
    if recorder is not None:
        yield _one(_counter("recordings_started", "Recordings Asterisk started"), recorder.started)
        yield _one(
            _counter("recordings_finished", "Recordings Asterisk finished"), recorder.finished
        )
        failures = _counter(
            "recording_failures",
            "Recordings that failed (refused request, Asterisk's RecordingFailed, policy read)",
            ["where"],
        )
        for where in ("request", "asterisk", "policy"):
            failures.add_metric([where], recorder.failure_reasons.get(where, 0))
        yield failures
    listening = extras.get("listening")
    if listening is not None:
        yield _one(
            _gauge("listen_sessions", "Supervisors listening, whispering or barging now"),
            len(listening.sessions),
        )


def _one(family: Any, value: float | bool) -> Any:
    family.add_metric([], float(value))
    return family


class Metrics:
    """One registry per ``serve``: the state collector, the journal flush histogram and
    the loop-lag histogram."""

    def __init__(self, state: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StateCollector(state))
        self.journal_flush = Histogram(
            f"{PREFIX}_journal_flush_seconds",
            "Time to write one batch of the write-behind journal",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.agi_session = Histogram(
            f"{PREFIX}_agi_session_seconds",
            "FastAGI session time per route (entry: hours, ad-block, tone)",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.entry_counts: Counter[tuple[str, str]] = Counter()
        self.call_setup = Histogram(
            f"{PREFIX}_inbound_call_setup_seconds",
            "Inbound call setup: arrival (StasisStart) to the agent's originate (includes the "
            "wait for an agent), and the agent's answer to both legs bridged",
            ["stage"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
        )
        self._attached: set[int] = set()
        self.loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop woke a timer (a busy or blocked loop)",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
        )

    def attach(self, state: Any) -> None:
        """Hook the histograms into the parts (a runtime setup hook: the AGI server exists).
        Each hook is one observe or dict increment."""
        extras = getattr(state, "extras", None) or {}
        journal = getattr(extras.get("distributor"), "journal", None)
        if journal is not None:
            journal.on_flush = self.journal_flush.observe
        agi = getattr(state, "agi", None)
        if agi is not None:
            agi.on_session = self._agi_session
        inbound = extras.get("inbound")
        if inbound is not None:
            inbound.on_timing = self._call_setup
        entry = extras.get("entry")
        if entry is not None and id(entry) not in self._attached:
            self._attached.add(id(entry))  # attach runs twice (build, then setup hook)
            previous = entry.on_decision  # another listener (a test, a monitor) keeps its own
            if previous is None:
                entry.on_decision = self._entry_decided
            else:

                def both(client_id: int, decision: Any) -> None:
                    self._entry_decided(client_id, decision)
                    previous(client_id, decision)

                entry.on_decision = both

    def _call_setup(self, stage: str, seconds: float) -> None:
        self.call_setup.labels(stage).observe(seconds)

    def _agi_session(self, route: str, outcome: str, seconds: float) -> None:
        self.agi_session.labels(route).observe(seconds)

    def _entry_decided(self, client_id: int, decision: Any) -> None:
        self.entry_counts[(decision.action.value, decision.hours.status.value)] += 1

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def loop_lag(metrics: Metrics, interval: float = LOOP_LAG_INTERVAL) -> None:
    """A component: sleep ``interval``, record how late the loop woke us."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, loop.time() - due))


CONTENT_TYPE = CONTENT_TYPE_LATEST


async def metrics_server(metrics: Metrics, host: str, port: int) -> None:
    """A component: ``GET /metrics`` alone on its own port ([metrics] http_port), served on
    serve's loop by uvicorn like the web app (the collector reads loop-owned state, so
    prometheus_client's threaded server is not an option)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from .embedded_server import EmbeddedServer

    async def scrape(request: Any) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    app = Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = EmbeddedServer(config)
    await server.serve()
