"""The live panel served for browser tests without Asterisk.

:class:`LivePanel` runs the desktop + panel routes on uvicorn in a thread (a
``fakes.web.LiveServer``, like ``LiveDesktop``) around a *real* distributor on SQLite with
a fake telephony, an AMI monitor that is fed events by hand (never connects) and the panel
feed::

    with LivePanel(tmp_path) as live:
        live.call(live.desk.call_arrived, "ch-1", live.lines["4721000001"], "+4791000001")
        live.call(live.ami_up)                  # the AMI view is live
        live.call(live.ami.on_event, {...})     # a recorded AMI event

Accounts are ``fakes.web.DEFAULT_ACCOUNTS`` (kari/ola agents, siri supervisor, adam admin);
lines "Support" (4721000001, priority 1), "Sales" (4721000002, priority 5) and
"Secret" (4721000003); kari may serve Support and Sales; campaign "Autumn" (power).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ami.monitor import AmiMonitor
from asterisk_cube.config import AmiSettings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services import supervision as svc
from asterisk_cube.web.app import create_app
from asterisk_cube.web.audio import AudioWeb
from asterisk_cube.web.desktop import desktop_mount
from asterisk_cube.web.panel import Panel
from asterisk_cube.web.panel_feed import PanelFeed
from asterisk_cube.web.panel_nodes import CenterChanged, CenterRows, CenterView

from .web import LiveServer, make_accounts, make_settings


class QuietTelephony:
    """Rings nobody: accepted calls stay 'connecting' until the test says otherwise."""

    async def connect_agent(self, call_id, channel_id, endpoint, tone):
        await asyncio.sleep(3600)

    async def hangup(self, channel_id):
        return None

    def leg_up(self, channel_id):
        return False  # a hung-up leg leaves at once here

    async def release(self, call_id, channels):
        return None

    async def callback(self, call_id, endpoint, number, caller_id):
        return None


class LivePanel(LiveServer):
    what = "panel"
    graceful_shutdown = 1

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.sessions, self.ids = make_accounts(path)
        with transaction(self.sessions) as s:
            p.add_line(s, "4721000001", "Support", priority=1)
            p.add_line(s, "4721000002", "Sales", priority=5)
            p.add_line(s, "4721000003", "Secret", priority=0)
            for name in ("kari", "ola"):
                s.get(m.Agent, self.ids[name]).endpoint = f"PJSIP/{name}"
            p.grant_lines(s, "kari", ["4721000001", "4721000002"])
            p.grant_lines(s, "ola", ["4721000001"])
            self.campaign_id = p.add_campaign(s, "Autumn", mode="power", caller_id="4721000009").id
            self.lines = {ln.did: ln.id for ln in s.scalars(select(m.Line))}
        self.settings = make_settings(path)
        self.hub: EventHub | None = None
        self.desk: Distributor | None = None
        self.ami: AmiMonitor | None = None
        self.feed: PanelFeed | None = None
        # what the dialer's snapshot says (Dialer.snapshot rows); tests set it
        self.dialer_rows: list[dict[str, Any]] = []

    def more_routes(self) -> list[Any]:
        """Routes served beside the panel's and the desk's (a subclass adds e.g. reports)."""
        return []

    def campaigns(self) -> list[dict[str, Any]]:
        with transaction(self.sessions) as s:
            return svc.campaign_pace(s)

    async def _serve(self) -> None:
        self.hub = EventHub()
        self.desk = Distributor(self.sessions, self.hub, QuietTelephony())
        self.desk.load()
        self.ami = AmiMonitor(AmiSettings(), self.hub)
        self.feed = PanelFeed(
            self.hub,
            self.desk,
            self.ami,
            campaigns=self.campaigns,
            dialer=lambda: list(self.dialer_rows),
            campaign_interval=0.5,
            live_interval=0.2,
            center=CenterView(self.sessions, self.hub, self.desk.node),
        )
        state = SimpleNamespace(hub=self.hub, web=None)
        panel = Panel(self.feed, self.desk, self.sessions)
        # supervisor audio (issue #17) without ARI: every listen/record is refused
        audio = AudioWeb(self.sessions, self.desk, None, None, None)
        mount = desktop_mount(
            self.settings,
            self.desk,
            self.hub,
            self.sessions,
            extra_routes=[*panel.routes(), *audio.routes(), *self.more_routes()],
        )
        app = create_app(self.settings, state, extra_routes=[mount])
        feed_task = asyncio.create_task(self.feed.run())
        try:
            await self._run_server(app, state)
        finally:
            feed_task.cancel()
            await self.desk.close()

    # --- driving it from the test's thread (see also LiveServer.call) ----------------------

    def ami_up(self) -> None:
        """Pretend the AMI monitor logged in and resynced (on the loop)."""
        self.ami.connected = True
        self.ami.synced = True
        self.ami.stale_since = None
        self.ami._publish_status("resynced")

    def show_center(self, rows: CenterRows) -> None:
        """Pretend the other nodes' rows were read (issue #14; on the loop)."""
        assert self.feed is not None and self.feed.center is not None
        self.feed.center.rows = rows
        self.hub.publish(CenterChanged())

    def ami_down(self, reason: str = "connection lost") -> None:
        self.ami._on_disconnect(None, ConnectionResetError(reason))
