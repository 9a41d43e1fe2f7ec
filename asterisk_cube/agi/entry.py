"""FastAGI route ``entry``: opening hours, ad-blocking and tone for an answering-service call
(F-S6, F-S7, F-S8), before any agent is involved.

The generated dialplan runs, for every answering-service DID::

    same => n,AGI(agi://127.0.0.1:4573/entry?client=<client_id>&line=<line_id>)

and then branches on the channel variables this route sets (``CUBE_ACTION`` reject /
announce / queue, ``CUBE_HOURS``, ``CUBE_TONE``, ``CUBE_PROMPTS``, ...; see
:meth:`asterisk_cube.core.entry.EntryDecision.channel_variables`). If the route fails or
the server is down, no variable is set and the dialplan queues the call: the entry fails
*open*, a caller is never lost because of us.

Per call the route does no database work: the client's configuration (hours with special
days and national holidays, ad-block settings and lists, tone, closed handling) comes from
:class:`EntryConfigCache` (``agi/entry_config.py``; without an ``await`` while it is warm:
``warm()``), and ad-block verdicts are written in batches by :class:`VerdictLog`
(``agi/verdict_log.py``). The cache is invalidated by a
*configuration fingerprint*, one cheap query (counts and maxima of the configuration tables,
``max(clients.updated_at)``) run at most once per ``check_interval`` second. It therefore
notices changes made by another process (the CLI) within about a second, without any
signalling between processes.
``invalidate()`` drops entries at once: ``serve``'s configuration watcher
(``db.config_version``) calls it when any process changed the configuration.

Register it in the runtime::

    cache = EntryConfigCache(sessions)
    verdicts = VerdictLog(sessions)
    Runtime(
        settings,
        agi_routes={"entry": EntryRoute(cache, verdicts).handle},
        components={"adblock-verdicts": verdicts.component},  # flushes on shutdown
        ...,
    )
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ..core.adblock import NO_GLOBAL_LISTS, AdblockReason, GlobalLists
from ..core.entry import EntryAction, EntryDecision, decide
from ..core.numbers import presented_number
from ..limits import RateLimitedLog
from ..logs import get_logger
from .entry_config import ClientEntryConfig, EntryConfigCache, PreparedVariables
from .verdict_log import VerdictLog

log = get_logger(__name__)
# A peer can name this route with any client (or none): one line per interval, not per call.
_garbage = RateLimitedLog(log.error)


# ------------------------------------------------------------------ the route


class AgiLike(Protocol):
    """What the route needs of :class:`asterisk_cube.agi.session.AgiSession`."""

    params: dict[str, str]

    @property
    def args(self) -> list[str]: ...

    @property
    def caller_number(self) -> str: ...

    @property
    def caller_presentation(self) -> str: ...

    @property
    def channel(self) -> str: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def set_variable(self, name: str, value: object) -> None: ...

    async def exec(self, application: str, *args: object) -> Any: ...


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


async def set_variables(agi: AgiLike, variables: dict[str, str] | PreparedVariables) -> None:
    """Set channel variables in one round trip (``EXEC MSet``) where the values allow it,
    else (odd characters, or no MSet in this Asterisk) with one ``SET VARIABLE`` each."""
    prepared = (
        variables if isinstance(variables, PreparedVariables) else PreparedVariables.of(variables)
    )
    rest = prepared.rest
    if prepared.mset_args:
        result = await agi.exec("MSet", *prepared.mset_args)
        value = getattr(result, "value", 0)
        if value is not None and value < 0:  # -2: application not found
            rest = prepared.variables
    for name, value in rest.items():
        await agi.set_variable(name, value)


class EntryRoute:
    """``async`` callable registered as AGI route ``entry`` (see the module docstring).

    Where the client id comes from, first found wins: ``?client=`` in the AGI URL, the
    first AGI argument, the channel variable ``CUBE_CLIENT`` (one extra round trip).
    """

    def __init__(
        self,
        cache: EntryConfigCache,
        verdicts: VerdictLog | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_decision: Callable[[int, EntryDecision], None] | None = None,
    ):
        self.cache = cache
        self.verdicts = verdicts
        self.now = now
        self.on_decision = on_decision  # test/monitor hook
        self.decisions = 0
        self.failures = 0

    async def client_id(self, agi: AgiLike) -> int | None:
        found = _int(agi.params.get("client"))
        if found is None and agi.args:
            found = _int(agi.args[0])
        if found is None:
            found = _int(await agi.get_variable("CUBE_CLIENT"))
        return found

    async def __call__(self, agi: AgiLike) -> None:
        await self.handle(agi)

    async def handle(self, agi: AgiLike) -> None:
        """The route proper. Register this bound method (``route.handle``): panoramisk's
        ``add_route`` only accepts coroutine *functions*, not async callable objects."""
        client_id = _int(agi.params.get("client"))  # how the generated dialplan passes it
        if client_id is None:
            client_id = await self.client_id(agi)
        if client_id is None:
            self.failures += 1
            _garbage("entry_no_client", channel=agi.channel)
            await agi.set_variable("CUBE_ACTION", "queue")
            return
        now = self.now()
        found = self.cache.warm(client_id, now) or await self._load(agi, client_id)
        if found is None:
            await agi.set_variable("CUBE_ACTION", "queue")  # fail open: an agent answers
            return
        config, shared = found
        # A number the caller withholds (Privacy: id, a trusted P-Asserted-Identity) arrives
        # with a restricted presentation: it is anonymous here, as in the Stasis app.
        caller = presented_number(agi.caller_number, agi.caller_presentation)
        # The cached config lives until the configuration changes; both memos with it.
        decision = decide(
            config.hours_memo.at(config.hours, now),
            config.verdicts.get(caller, config.adblock, shared),
            tone=config.tone,
            closed_handling=config.closed_handling,
        )
        self.decisions += 1
        ad = decision.adblock
        if self.verdicts is not None and ad.reason is not AdblockReason.DISABLED:
            logged_caller = ad.caller or (caller or "")[:64]  # raw when withheld (column: 64)
            self.verdicts.record((now, client_id, logged_caller, ad.blocked, ad.reason.value))
        # Queued calls are logged by the AGI server's session line (and the Stasis app);
        # the decisions that end a call here are logged at INFO with their reason.
        if decision.action is not EntryAction.QUEUE or log.isEnabledFor(logging.DEBUG):
            log_decision(client_id, agi.channel, caller, decision)
        await set_variables(agi, config.variables_for(decision))
        if self.on_decision is not None:
            self.on_decision(client_id, decision)

    async def _load(
        self, agi: AgiLike, client_id: int
    ) -> tuple[ClientEntryConfig, GlobalLists] | None:
        """The cold path: load (or wait for) the configuration; None (logged) if it cannot be
        had, and the call is then queued without a decision."""
        try:
            config = await self.cache.get(client_id)
            shared = await self.cache.global_lists()
        except Exception as exc:
            # No configuration (database down on a cache miss).
            self.failures += 1
            log.error("entry_config_unavailable", client=client_id, error=repr(exc))
            return None
        if config is None:
            self.failures += 1
            _garbage("entry_unknown_client", client=client_id, channel=agi.channel)
            return None
        return config, shared or NO_GLOBAL_LISTS


def log_decision(client_id: int, channel: str, caller: str, decision: EntryDecision) -> None:
    """One ``entry_decision`` line: INFO for calls ended here (rejected, announced), DEBUG
    for queued ones (the caller only checks DEBUG is on before building the fields)."""
    ad = decision.adblock
    (log.debug if decision.action is EntryAction.QUEUE else log.info)(
        "entry_decision",
        client=client_id,
        channel=channel,
        caller=ad.caller or caller,
        action=decision.action.value,
        hours=decision.hours.status.value,
        adblock=ad.reason.value,
        matched=(ad.matched.value + ("*" if ad.matched.prefix else "")) if ad.matched else None,
    )
