"""Assembles the product for ``serve``: database, distributor, Stasis app, web desktop.

``runtime.Runtime`` knows how to run parts on one loop; this module decides
which parts there are and connects them, so neither side imports the other's
internals.
"""

from __future__ import annotations

import socket
from typing import Any

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.ari.inbound import InboundApp
from asterisk_cube.ari.outbound import OutboundApp
from asterisk_cube.ari.router import StasisRouter
from asterisk_cube.config import Settings
from asterisk_cube.db.session import make_engine, make_sessionmaker, schema_status
from asterisk_cube.dialer.service import Dialer
from asterisk_cube.events import EventHub
from asterisk_cube.logs import get_logger
from asterisk_cube.runtime import Runtime, RuntimeState

log = get_logger(__name__)


class SchemaOutOfDate(RuntimeError):
    pass


def open_database(settings: Settings):
    engine = make_engine(settings.database_url)
    current, head = schema_status(engine)
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at {current or 'nothing'}, need {head}: "
            "run `asterisk-cube db upgrade`"
        )
    return make_sessionmaker(engine)


def build_runtime(settings: Settings, **runtime_kwargs: Any) -> Runtime:
    """The full product: ARI inbound app + distributor + web desktop (+ what is wired below)."""
    sessions = open_database(settings)
    hub = runtime_kwargs.pop("hub", None) or EventHub()
    distributor = Distributor(sessions, hub, node=socket.gethostname())
    distributor.load()
    dialer = Dialer(sessions, distributor, hub, node=socket.gethostname())

    def handler(state: RuntimeState) -> StasisRouter:
        inbound = InboundApp(state.settings, state.supervisor, distributor)
        distributor.telephony = inbound
        dialer.telephony = OutboundApp(state.settings, state.supervisor)
        state.extras["distributor"] = distributor
        state.extras["dialer"] = dialer
        state.extras["sessions"] = sessions
        return StasisRouter(inbound, dialer.telephony)

    components = {"dialer": lambda state: dialer.run(), **runtime_kwargs.pop("components", {})}
    return Runtime(
        settings,
        hub=hub,
        handler=handler,
        components=components,
        extra_routes=_web_routes(settings, distributor, hub, sessions),
        **runtime_kwargs,
    )


def _web_routes(settings, distributor, hub, sessions) -> list:
    from asterisk_cube.web.desktop import desktop_mount

    # The desktop mount answers every path not matched before it: keep it last.
    return [desktop_mount(settings, distributor, hub, sessions)]
