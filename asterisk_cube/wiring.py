"""Assembles the product for ``serve``: database, distributor, Stasis app, web desktop.

``runtime.Runtime`` knows how to run parts on one loop; this module decides
which parts there are and connects them, so neither side imports the other's
internals.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import sys
from typing import Any

from asterisk_cube import node_lease, node_takeover
from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ari.crossnode import CrossNodeApp
from asterisk_cube.ari.inbound import InboundApp
from asterisk_cube.ari.outbound import OutboundApp
from asterisk_cube.ari.router import StasisRouter
from asterisk_cube.config import ConfigError, Settings
from asterisk_cube.db.config_version import ConfigWatcher
from asterisk_cube.db.models import utcnow
from asterisk_cube.db.session import (
    engine_of,
    make_engine,
    make_sessionmaker,
    require_database,
    schema_status,
)
from asterisk_cube.dialer.service import Dialer, dialer_options
from asterisk_cube.events import EventHub
from asterisk_cube.logs import get_logger
from asterisk_cube.loopwatch import LoopWatch
from asterisk_cube.metrics import Metrics, loop_lag, metrics_server
from asterisk_cube.runtime import Runtime, RuntimeState
from asterisk_cube.services.nodes import NodeLease, NodeNameInUse, second_node_on_sqlite
from asterisk_cube.webrtc import EndpointSync

log = get_logger(__name__)

GIL_SWITCH_INTERVAL = 0.001  # seconds; see build_runtime


class SchemaOutOfDate(RuntimeError):
    pass


class NodeRefused(SchemaOutOfDate):
    """A live serve holds this node name (serve exits with the message)."""


def open_database(settings: Settings):
    try:
        require_database(settings.database_url)  # serve never creates an empty database
    except ConfigError as exc:
        raise SchemaOutOfDate(str(exc)) from None
    engine = make_engine(
        settings.database_url, application_name=f"asterisk-cube {settings.node_name}"
    )
    current, head = schema_status(engine)
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at {current or 'nothing'}, need {head}: "
            "run `asterisk-cube db upgrade`"
        )
    return make_sessionmaker(engine)


def build_runtime(settings: Settings, **runtime_kwargs: Any) -> Runtime:
    """The full product: ARI inbound app + distributor + web desktop (+ what is wired below)."""
    # Database writes run in worker threads (the distributor's journal, the AGI verdict
    # log). When one of them holds the GIL, the event loop waits for it up to the switch
    # interval (5 ms by default) after each socket read: 1 ms keeps calls moving.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    sessions = open_database(settings)
    # Configuration changed by the CLI (or another node) while we run: noticed within a
    # second, then every part that keeps configuration in memory reloads it. Primed
    # before loading, so a change made while we start is not missed.
    watcher = ConfigWatcher(engine_of(sessions))
    watcher.prime()
    hub = runtime_kwargs.pop("hub", None) or EventHub()
    # This node's lease on its name, before anything is loaded or recovered: a second
    # serve with the same [node] name stops here (issue #14); our agents left working
    # are paused in the same transaction.
    node = settings.node_name
    with sessions() as s:
        second = second_node_on_sqlite(s, node, utcnow())
    if second:
        raise NodeRefused(second)
    lease = NodeLease(sessions, node, lease_seconds=settings.node.lease_seconds)
    try:
        taken = lease.take()
    except NodeNameInUse as exc:
        raise NodeRefused(str(exc)) from None
    log.info("node_lease_taken", node=node, **taken)
    distributor = Distributor(sessions, hub, node=node)
    distributor.load()
    dialer = Dialer(sessions, distributor, hub, node=node, **dialer_options(settings.dialer))

    audio = _audio(settings, sessions, distributor)

    def handler(state: RuntimeState) -> StasisRouter:
        assert state.supervisor is not None  # the runtime connects ARI before it asks
        inbound = InboundApp(state.settings, state.supervisor, distributor)
        distributor.telephony = inbound
        dialer.telephony = OutboundApp(state.settings, state.supervisor)
        audio_app = audio.app(state, inbound, dialer.telephony, distributor)  # issue #17
        state.extras["distributor"] = distributor
        state.extras["dialer"] = dialer
        state.extras["inbound"] = inbound  # /metrics hooks its call-setup timings
        state.extras["sessions"] = sessions
        crossnode = CrossNodeApp(state.settings, state.supervisor)  # issue #14: trunk legs
        state.extras["crossnode"] = crossnode
        return StasisRouter(inbound, dialer.telephony, audio_app, crossnode)

    # the other nodes' agents and calls on this node's panel (issue #14)
    from asterisk_cube.web.panel_nodes import CHANNEL as CENTER_CHANNEL
    from asterisk_cube.web.panel_nodes import CenterView, own_devices

    center = CenterView(sessions, hub, node)
    distributor.journal.before_commit = center.notify_hook
    watcher.channels[CENTER_CHANNEL] = center.poke_threadsafe
    monitor, feed = _panel(settings, distributor, dialer, hub, sessions, center)
    center.devices = lambda: own_devices(distributor, monitor)  # its phones, for others
    entry, verdicts, mailer = _answering_service(settings, sessions, watcher)
    distributor.on_note = mailer.wake
    watcher.add("acd", distributor.reload_config)
    queue_mirror = distributor.xn_attach(watcher)  # one queue across nodes (PostgreSQL)
    watcher.add("dialer", dialer.refresh)
    watcher.add("recording", audio.recorder.forget_policies)  # policies are kept per line
    # agents added or removed: their browser phones' endpoints (docs/webrtc.md)
    watcher.add("webrtc", EndpointSync(settings, sessions).reload)

    def lease_tick() -> None:  # after each renewal, in its worker thread
        node_takeover.take_over_dead(sessions, node, lease.clock())
        center.poke_threadsafe()  # a node that stopped renewing shows as down

    components = {
        "acd": lambda state: keep_until_stopped(distributor),
        "dialer": lambda state: dialer.run(),
        "ami": monitor.run,
        "panel": feed.run,
        "adblock-verdicts": verdicts.component,
        "notes-mail": mailer.component,
        "config-watch": lambda state: watcher.run(),
        "recording-retention": lambda state: audio.retention(sessions),
        "node-lease": node_lease.component(lease, lease_tick),
        "panel-nodes": center.run,
        **({"queue-mirror": lambda state: distributor.xn_run(watcher)} if queue_mirror else {}),
        **runtime_kwargs.pop("components", {}),
    }
    runtime = Runtime(
        settings,
        hub=hub,
        handler=handler,
        agi_routes={"entry": entry, **runtime_kwargs.pop("agi_routes", {})},
        components=components,
        extra_routes=_web_routes(
            settings, distributor, hub, sessions, feed, dialer, watcher, audio=audio
        ),
        **runtime_kwargs,
    )
    # what /health, /ready and /metrics read (issue #15)
    runtime.state.extras.update(
        distributor=distributor,
        dialer=dialer,
        ami=monitor,
        panel_feed=feed,
        config_watcher=watcher,
        mailer=mailer,
        node_lease=lease,
        entry=getattr(entry, "__self__", None),  # the EntryRoute behind the bound handler
        recorder=audio.recorder,
        listening=audio.listening,
    )
    distributor.service_level = dt.timedelta(seconds=settings.metrics.service_level_seconds)
    metrics = Metrics(runtime.state)
    metrics.attach(runtime.state)  # the journal now; the AGI server once it exists:
    runtime.setup_hooks.append(metrics.attach)
    runtime.state.extras["metrics"] = metrics
    runtime.extra_components["loop-lag"] = lambda state: loop_lag(metrics)
    if settings.metrics.loop_stall_ms:  # a stall logs the loop's stack (docs/operations.md)
        watch = LoopWatch(settings.metrics.loop_stall_ms / 1000)
        runtime.state.extras["loop_watch"] = watch
        runtime.extra_components["loop-watch"] = lambda state: watch.run()
    if settings.metrics.http_port:
        runtime.extra_components["metrics-http"] = lambda state: metrics_server(
            metrics, settings.metrics.http_host, settings.metrics.http_port
        )
    # Everything built so far (modules, SQLAlchemy's mappers, the loaded state) lives as
    # long as serve: leave it out of the garbage collector's full scans, which otherwise
    # pause the loop for 10-60 ms now and then (a caller waits through that).
    gc.collect()
    gc.freeze()
    return runtime


async def keep_until_stopped(distributor: Distributor) -> None:
    """A runtime component: when ``serve`` stops, the distributor's timers and tasks end
    and its write-behind journal is written out (nothing queued is lost on SIGTERM)."""
    try:
        await asyncio.Event().wait()
    finally:
        await distributor.close()


def _answering_service(settings, sessions, watcher=None):
    """The FastAGI entry route (hours, ad-block, tone), its verdict log, the note mailer."""
    from asterisk_cube.agi.entry import EntryRoute
    from asterisk_cube.agi.entry_config import EntryConfigCache
    from asterisk_cube.agi.verdict_log import VerdictLog
    from asterisk_cube.services.mailer import NoteMailer

    verdicts = VerdictLog(sessions)
    cache = EntryConfigCache(sessions)
    if watcher is not None:
        watcher.add("entry", cache.invalidate)
    # Register the bound method: panoramisk's dispatch wants a coroutine function.
    entry = EntryRoute(cache, verdicts).handle
    return entry, verdicts, NoteMailer(sessions, settings.smtp)


def _panel(settings, distributor, dialer, hub, sessions, center=None):
    """The AMI monitor and the live panel's feed (F-M1)."""
    from asterisk_cube.ami.monitor import AmiMonitor
    from asterisk_cube.db.session import transaction
    from asterisk_cube.services.supervision import campaign_pace
    from asterisk_cube.web.panel_feed import PanelFeed

    def campaigns():
        with transaction(sessions) as s:
            return campaign_pace(s)

    monitor = AmiMonitor(settings.ami, hub)
    feed = PanelFeed(
        hub, distributor, monitor, campaigns=campaigns, dialer=dialer.snapshot, center=center
    )
    return monitor, feed


def _audio(settings, sessions, distributor):
    """Supervisor listen/whisper/barge and call recording (issue #17)."""
    from asterisk_cube.audio.wiring import build

    return build(settings, sessions, distributor)


def _web_routes(
    settings, distributor, hub, sessions, feed=None, dialer=None, watcher=None, audio=None
) -> list:
    from asterisk_cube.web.audio import AudioWeb
    from asterisk_cube.web.auth import AgentDirectory
    from asterisk_cube.web.desktop import desktop_mount
    from asterisk_cube.web.panel import Panel
    from asterisk_cube.web.reports import Reports

    panel = [] if feed is None else Panel(feed, distributor, sessions).routes()
    panel += Reports(sessions).routes()
    if audio is not None:
        web = AudioWeb(sessions, distributor, audio.listening, audio.recorder, audio.store)
        audio.listening.on_end = web.audit_end
        panel += web.routes()
    # The desktop mount answers every path not matched before it: keep it last.
    # Accounts: a role changed or an agent removed with the CLI counts at the next request.
    directory = AgentDirectory(sessions)
    if watcher is not None:
        watcher.add("web-auth", directory.config_changed)
    return [
        desktop_mount(
            settings,
            distributor,
            hub,
            sessions,
            extra_routes=panel,
            dialer=dialer,
            directory=directory,
        )
    ]
