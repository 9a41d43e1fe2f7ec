"""``DistributorCore``: what the mixins of ``Distributor`` share, declared once for the type
checker.

``Distributor`` (``acd.distributor``) is composed of mixins, one concern each (lifecycle,
desk, forwarding, missed callbacks, loading, recovery, outbound hooks), over one
``AcdState``. Each mixin derives from this class, so that it sees the attributes that
``Distributor.__init__`` sets and the methods that another mixin or the engine defines.
At run time this class adds nothing but ``phone``: the attributes are annotations only
and the methods are declared under ``TYPE_CHECKING`` (their bodies are in the modules
named beside them, which mypy checks against these signatures)."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from collections.abc import Callable, Coroutine, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.acd import contacts
from asterisk_cube.acd.caller_lookup import CallerLookup
from asterisk_cube.acd.notifier import Notifier
from asterisk_cube.acd.ports import Telephony
from asterisk_cube.acd.state import (
    Clock,
    EnquiryRegistered,
    LiveAgent,
    LiveCall,
    Release,
    StateAttributes,
)
from asterisk_cube.db.ids import IdAllocator
from asterisk_cube.db.journal import Journal
from asterisk_cube.events import EventHub

if TYPE_CHECKING:
    from asterisk_cube.acd.config import LineRoute
    from asterisk_cube.core import agents as ag
    from asterisk_cube.db import models as m


class DistributorCore(StateAttributes):
    """The shared attributes and cross-mixin methods of ``Distributor``."""

    # set by Distributor.__init__
    sessions: sessionmaker[Session]
    journal: Journal
    ids: IdAllocator
    caller_lookup: CallerLookup
    hub: EventHub
    telephony: Telephony | None
    clock: Clock
    node: str
    ring_timeout: float
    notifier: Notifier
    contacts: contacts.Contacts
    _tx_depth: int
    _tasks: set[asyncio.Task[Any]]
    _loaded: bool
    on_note: Callable[[], None] | None
    counts: collections.Counter[tuple[str, int | None, Any]]
    service_level: dt.timedelta
    _enquiry_listeners: list[Callable[[EnquiryRegistered], None]]

    @property
    def phone(self) -> Telephony:
        """The telephony port, for the paths that run only once ``wiring`` attached it
        (an agent on a call, a forward in progress)."""
        assert self.telephony is not None, "no telephony attached to the distributor"
        return self.telephony

    if TYPE_CHECKING:
        # acd.distributor: plumbing
        def now(self) -> dt.datetime: ...
        def _tx(self) -> AbstractContextManager[Session]: ...
        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(
            self, op: Callable[..., object], *args: Any, then: Any = None, **kwargs: Any
        ) -> None: ...
        def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task: ...

        # acd.distributor: agent transitions, dispatch and offers
        def _apply(self, agent: LiveAgent, event: ag.Event, s: Session | None = None) -> None: ...
        def _arm_wrap_timer(self, agent: LiveAgent) -> None: ...
        def _wrap_up_expired(self, agent_id: int) -> None: ...
        def _set_card(self, agent: LiveAgent, call_id: int | None) -> None: ...
        def _registration_missing(self, agent: LiveAgent) -> bool: ...
        def _after_agent_change(self, agent: LiveAgent) -> None: ...
        def dispatch(self) -> None: ...
        def _end_offer(self, call: LiveCall, result: m.OfferResult) -> None: ...
        def _back_to_queue(
            self, call: LiveCall, lapsed_by: int | None = None, now: dt.datetime | None = None
        ) -> None: ...
        def _line_route(self, line_id: int | None) -> LineRoute | None: ...
        async def _connect(self, call: LiveCall, agent: LiveAgent) -> None: ...
        def call_of_agent_channel(self, channel_id: str) -> int | None: ...

        # acd.loading
        def load(self) -> None: ...
        def refresh_lines(self) -> None: ...
        def _agent(self, agent_id: int) -> LiveAgent: ...
        def _remember_line(self, line: m.Line) -> LineRoute: ...

        # acd.lifecycle
        def caller_left(self, channel_id: str, cause: str = "hangup") -> None: ...
        def agent_leg_left(self, call_id: int, gone: str | None = None) -> None: ...
        def _release(self, call: LiveCall, gone: str | None = None) -> Release | None: ...
        def _record_missed(
            self, call_id: int, line_id: int | None, caller: str, at: dt.datetime
        ) -> None: ...
        def _call_finished(self, call: LiveCall) -> None: ...
        def _once_released(self, call: LiveCall, agent: LiveAgent, wrap: dt.timedelta) -> None: ...

        # acd.desk
        def _my_call(self, agent: LiveAgent, call_id: int, phases: Iterable[str]) -> LiveCall: ...
        def _card_call(self, agent: LiveAgent, call_id: int) -> LiveCall: ...

        # acd.crossnode
        def _xn_foreign(self, call: LiveCall) -> bool: ...
        def _xn_ended(self, call: LiveCall) -> None: ...
        def _xn_hangup(self, call: LiveCall) -> None: ...

        # acd.forwarding
        def forward_target_left(self, channel_id: str) -> bool: ...

        # acd.outbound_hooks
        def _enquiry_registered(
            self, call: LiveCall, agent_id: int, topic_ids: list[int], comment: str
        ) -> None: ...
