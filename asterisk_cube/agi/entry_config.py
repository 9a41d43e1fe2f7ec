"""The entry route's configuration, held in memory so that a call does no database work
(F-S1..F-S8): per client a ClientEntryConfig (hours, ad-block, tone, closed handling),
the global lists, and EntryConfigCache, which loads them off the loop and drops them
when the configuration fingerprint moves (or at invalidate(), from
db.config_version); the memos (HoursMemo, VerdictMemo, VariablesMemo)
spare repeated calls the same work.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..core.adblock import AdblockConfig, AdblockReason, AdblockVerdict, GlobalLists, verdict
from ..core.entry import EntryAction, EntryDecision
from ..core.hours import HoursVerdict, Schedule, status_at, wall_to_aware
from ..core.numbers import InvalidNumber
from ..core.script import ClosedHandling, Tone
from ..core.spoken import LANGUAGES as SPOKEN_LANGUAGES
from ..core.spoken import next_open_words
from ..db import models as m
from ..logs import get_logger
from ..services.client_config import client_schedule, holiday_years

log = get_logger(__name__)


CHECK_INTERVAL = 1.0  # seconds between configuration fingerprint checks
PROMPT_BASE = "asterisk-cube"  # sounds/ is installed as <astdatadir>/sounds/asterisk-cube
# Languages with their own prompt set under sounds/<lang>/; others get the English set.
PROMPT_LANGUAGES = frozenset({"nb"})


# ------------------------------------------------------------------ configuration

HOURS_MEMO_MAX = timedelta(seconds=60)
VERDICT_MEMO_SIZE = 20_000


class HoursMemo:
    """One client's hours verdict, reused while it cannot change: until the next opening or
    closing, the next local midnight (closed and holiday differ by day) and at most a minute.
    ``status_at`` follows back-to-back intervals for up to two weeks; per call that is the
    most expensive part of the entry after number parsing."""

    __slots__ = ("valid_from", "valid_until", "verdict")

    def __init__(self) -> None:
        self.verdict: HoursVerdict | None = None
        self.valid_from = self.valid_until = datetime.min.replace(tzinfo=UTC)

    def at(self, schedule: Schedule, now: datetime) -> HoursVerdict:
        if self.verdict is not None and self.valid_from <= now < self.valid_until:
            return self.verdict
        found = status_at(schedule, now)
        local = found.local_time
        midnight = wall_to_aware(
            datetime.combine(local.date() + timedelta(days=1), wall_time()), schedule.tz
        )
        change = found.closes_at if found.is_open else found.next_open
        candidates = [midnight, now + HOURS_MEMO_MAX] + ([change] if change else [])
        self.verdict, self.valid_from, self.valid_until = found, now, min(candidates)
        return found


class VerdictMemo:
    """Ad-block verdicts by raw caller ID for one client configuration (repeat callers cost a
    dict lookup instead of a phone-number parse). Bounded LRU; dropped with the config."""

    __slots__ = ("hits", "items", "size")

    def __init__(self, size: int = VERDICT_MEMO_SIZE) -> None:
        self.items: OrderedDict[str, AdblockVerdict] = OrderedDict()
        self.size = size
        self.hits = 0

    def get(self, caller: str, config: AdblockConfig, shared: GlobalLists) -> AdblockVerdict:
        found = self.items.get(caller)
        if found is not None:
            self.hits += 1
            self.items.move_to_end(caller)
            return found
        found = verdict(caller, config, shared)
        self.items[caller] = found
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return found


class VariablesMemo:
    """Prepared channel variables by (action, ad-block reason), for one hours verdict."""

    __slots__ = ("hours", "items")

    def __init__(self) -> None:
        self.hours: HoursVerdict | None = None
        self.items: dict[tuple[EntryAction, AdblockReason], PreparedVariables] = {}

    def get(self, decision: EntryDecision, config: ClientEntryConfig) -> PreparedVariables:
        if decision.hours is not self.hours:
            self.hours, self.items = decision.hours, {}
        key = (decision.action, decision.adblock.reason)
        found = self.items.get(key)
        if found is None:
            found = PreparedVariables.of(channel_variables(decision, config))
            self.items[key] = found
        return found


@dataclass(frozen=True)
class ClientEntryConfig:
    """What the entry decision needs from one client, compiled once per configuration."""

    client_id: int
    name: str
    hours: Schedule
    adblock: AdblockConfig
    tone: Tone = Tone.FORMAL
    closed_handling: ClosedHandling = ClosedHandling.NOTE
    language: str = "nb"
    years: tuple[int, ...] = ()  # years whose national holidays are in ``hours``
    hours_memo: HoursMemo = field(default_factory=HoursMemo, compare=False, repr=False)
    verdicts: VerdictMemo = field(default_factory=VerdictMemo, compare=False, repr=False)
    prepared: VariablesMemo = field(default_factory=VariablesMemo, compare=False, repr=False)

    def variables_for(self, decision: EntryDecision) -> PreparedVariables:
        """The channel variables of a decision, prepared once per outcome (action, ad-block
        reason) while the memoised hours verdict stands: the same few repeat call after call."""
        return self.prepared.get(decision, self)

    @property
    def prompts_language(self) -> str:
        """The language of the client's own prompt set, "" for the default English one."""
        lang = self.language.lower().replace("-", "_").split("_")[0]
        return lang if lang in PROMPT_LANGUAGES else ""

    @property
    def prompts(self) -> str:
        """Sound path prefix for ``Playback``: ``asterisk-cube[/<lang>]/<tone>``."""
        lang = self.prompts_language
        tone = self.tone.value
        return f"{PROMPT_BASE}/{lang}/{tone}" if lang else f"{PROMPT_BASE}/{tone}"

    def covers(self, now: datetime) -> bool:
        """False once a new year began since loading (national holidays are per year)."""
        return not self.years or now.year == self.years[1]


entry_years = holiday_years  # kept for callers of this module


def pattern_text(entry: m.BlocklistEntry) -> str:
    """A stored blocklist row as a core list entry (``*`` suffix for a prefix)."""
    return entry.number + ("*" if entry.kind == m.MatchKind.PREFIX else "")


def _compile_list(entries: Iterable[str], region: str, what: str) -> list[str]:
    """Keep the entries that compile; a bad stored row is logged, never fatal per call."""
    from ..core.numbers import parse_pattern

    good = []
    for entry in entries:
        try:
            parse_pattern(entry, region)
        except InvalidNumber:
            log.warning("adblock_bad_entry", list=what, entry=entry)
            continue
        good.append(entry)
    return good


def load_client_config(s: Session, client_id: int, now: datetime) -> ClientEntryConfig | None:
    """Read one client's entry configuration (None if there is no such client)."""
    client = s.get(m.Client, client_id)
    if client is None:
        return None
    years = holiday_years(now)
    hours = client_schedule(client, years)
    blocklist = s.scalars(
        select(m.BlocklistEntry).where(m.BlocklistEntry.client_id == client_id)
    ).all()
    region = client.phone_region or "NO"
    adblock = AdblockConfig.build(
        enabled=client.adblock_enabled,
        block_anonymous=client.block_anonymous,
        region=region,
        blocklist=_compile_list((pattern_text(e) for e in blocklist), region, "client"),
    )
    return ClientEntryConfig(
        client_id=client.id,
        name=client.name,
        hours=hours,
        adblock=adblock,
        tone=Tone(client.tone.value),
        closed_handling=ClosedHandling(client.closed_handling.value),
        language=client.language or "",
        years=years,
    )


def load_global_lists(s: Session) -> GlobalLists:
    """The global blocklist and the known-advertiser numbers (rows without a client)."""
    rows = s.scalars(select(m.BlocklistEntry).where(m.BlocklistEntry.client_id.is_(None))).all()
    advertisers = [pattern_text(r) for r in rows if r.known_advertiser]
    blocked = [pattern_text(r) for r in rows if not r.known_advertiser]
    return GlobalLists.build(
        _compile_list(blocked, "NO", "global"), _compile_list(advertisers, "NO", "advertisers")
    )


def config_fingerprint(s: Session) -> tuple[Any, ...]:
    """One query whose result changes whenever entry configuration changes.

    Clients: count and ``max(updated_at)`` (edits, additions, removals). Child tables
    (weekly hours, special days, blocklist): count and ``max(id)``; provisioning replaces
    rows rather than editing them, and also touches the client's ``updated_at``.
    """
    parts = [
        select(func.count()).select_from(m.Client).scalar_subquery(),
        select(func.max(m.Client.updated_at)).scalar_subquery(),
    ]
    for model in (m.OpeningHours, m.SpecialDay, m.BlocklistEntry):
        parts.append(select(func.count()).select_from(model).scalar_subquery())
        parts.append(select(func.max(model.id)).scalar_subquery())
    return tuple(s.execute(select(*parts)).one())


class EntryConfigCache:
    """Client entry configurations and the global lists, cached and invalidated on change.

    ``get()`` is called per call: normally a dict lookup plus a clock read. At most once per
    ``check_interval`` one caller runs the fingerprint query (in a worker thread); if the
    fingerprint changed, everything cached is dropped and reloaded on demand. Concurrent
    callers share one check and one load per client. If the database is unreachable the
    cache keeps serving what it has (and retries the check on the next interval).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        check_interval: float = CHECK_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.sessions = sessions
        self.check_interval = check_interval
        self.monotonic = monotonic
        self.now = now
        self._fingerprint: tuple[Any, ...] | None = None
        self._checked_at: float | None = None
        self._check: asyncio.Future[None] | None = None
        self._clients: dict[int, ClientEntryConfig | None] = {}
        self._loading: dict[int, asyncio.Future[ClientEntryConfig | None]] = {}
        self._globals: GlobalLists | None = None
        self._generation = 0  # bumped on every invalidation; stale loads are not stored
        self.loads = 0
        self.checks = 0
        self.invalidations = 0

    # --- invalidation ------------------------------------------------------------------

    def invalidate(self, client_id: int | None = None) -> None:
        """Drop one client's entry (or everything, also the global lists)."""
        self._generation += 1
        self.invalidations += 1
        if client_id is None:
            self._clients.clear()
            self._globals = None
        else:
            self._clients.pop(client_id, None)

    def _run(self, fn: Callable[[Session], Any]) -> Any:
        with self.sessions() as s:
            return fn(s)

    async def check(self, force: bool = False) -> None:
        """Compare the configuration fingerprint (if due) and invalidate on a change."""
        now = self.monotonic()
        recent = self._checked_at is not None and now - self._checked_at < self.check_interval
        if recent and not force:
            return
        if self._check is not None:
            await asyncio.shield(self._check)
            return
        self._check = asyncio.get_running_loop().create_future()
        try:
            self.checks += 1
            try:
                fingerprint = await asyncio.to_thread(self._run, config_fingerprint)
            except Exception as exc:  # the database is away: keep serving the cache
                log.warning("entry_config_check_failed", error=repr(exc))
                self._checked_at = self.monotonic()
                return
            self._checked_at = self.monotonic()
            if fingerprint != self._fingerprint:
                if self._fingerprint is not None:
                    log.info("entry_config_changed")
                self._fingerprint = fingerprint
                self.invalidate()
        finally:
            future, self._check = self._check, None
            future.set_result(None)

    # --- lookups -----------------------------------------------------------------------

    def warm(self, client_id: int, now: datetime) -> tuple[ClientEntryConfig, GlobalLists] | None:
        """The client's configuration and the global lists when both are cached and no
        fingerprint check is due: what :meth:`get` and :meth:`global_lists` would return,
        without awaiting (the per-call path). None otherwise: then await those two."""
        checked = self._checked_at
        if checked is None or self.monotonic() - checked >= self.check_interval:
            return None
        config = self._clients.get(client_id)
        shared = self._globals
        if config is None or shared is None or not config.covers(now):
            return None
        return config, shared

    async def get(self, client_id: int) -> ClientEntryConfig | None:
        """The client's entry configuration, or None if the client does not exist.

        Raises if the configuration cannot be loaded (database down on a cache miss)."""
        await self.check()
        cached = self._clients.get(client_id, _MISSING)
        if cached is not _MISSING and (cached is None or cached.covers(self.now())):
            return cached
        pending = self._loading.get(client_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ClientEntryConfig | None]
        future = asyncio.get_running_loop().create_future()
        self._loading[client_id] = future
        generation = self._generation
        try:
            now = self.now()
            config = await asyncio.to_thread(
                self._run, lambda s: load_client_config(s, client_id, now)
            )
            self.loads += 1
            if generation == self._generation:
                self._clients[client_id] = config
            future.set_result(config)
            return config
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent waiters re-raise it themselves
            raise
        finally:
            self._loading.pop(client_id, None)

    async def global_lists(self) -> GlobalLists:
        await self.check()
        if self._globals is None:
            generation = self._generation
            lists = await asyncio.to_thread(self._run, load_global_lists)
            if generation == self._generation:
                self._globals = lists
            return lists
        return self._globals


_MISSING: Any = object()


# ------------------------------------------------------------------ channel variables


# Values MSet takes literally (it splits on "," and "|", strips quotes, eats "\\"); "&"
# joins the files of one Playback (CUBE_NEXT_OPEN_FILES).
_MSET_SAFE = re.compile(r"^[\w.:+/@&-]*$")


@dataclass(frozen=True)
class PreparedVariables:
    """Channel variables split for :func:`set_variables`: ``MSet`` arguments and the rest."""

    variables: dict[str, str]
    mset_args: tuple[str, ...]
    rest: dict[str, str]

    @classmethod
    def of(cls, variables: dict[str, str]) -> PreparedVariables:
        batch = {k: v for k, v in variables.items() if _MSET_SAFE.match(v)}
        rest = {k: v for k, v in variables.items() if k not in batch}
        return cls(variables, tuple(f"{k}={v}" for k, v in batch.items()), rest)


def channel_variables(decision: EntryDecision, config: ClientEntryConfig) -> dict[str, str]:
    """Everything the route sets: the core's ``CUBE_*`` variables plus ``CUBE_PROMPTS``, and
    for an announced closure in a language with word prompts ``CUBE_NEXT_OPEN_FILES``.
    Called once per outcome while an hours verdict stands (:class:`VariablesMemo`), so the
    words are worked out once per next opening and day, and only for announced closures."""
    variables = decision.channel_variables()
    variables["CUBE_PROMPTS"] = config.prompts
    # SayUnixTime speaks with Asterisk's own (English) digits: only after English prompts.
    variables["CUBE_SAY_TIME"] = "no" if config.prompts_language else "yes"
    if decision.action is EntryAction.ANNOUNCE:
        files = next_open_files(decision.hours, config)
        if files:
            variables["CUBE_NEXT_OPEN_FILES"] = files
    return variables


def next_open_files(hours: HoursVerdict, config: ClientEntryConfig) -> str:
    """The next opening as word prompts of the client's set, ``&``-joined for ``Playback``
    (``asterisk-cube/nb/formal/words/i-morgen&...``); "" if there is none or the set has no
    words (English: the dialplan uses ``SayUnixTime``). Never fails the call."""
    if hours.next_open is None or config.prompts_language not in SPOKEN_LANGUAGES:
        return ""
    try:
        names = next_open_words(hours.next_open, hours.local_time, config.prompts_language)
    except ValueError as exc:
        log.warning("entry_next_open_unsayable", client=config.client_id, error=str(exc))
        return ""
    return "&".join(f"{config.prompts}/{name}" for name in names)
