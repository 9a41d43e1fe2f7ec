"""How a dialer call ends: the call row, the attempt's result and the contact's next
state, written in one transaction; claims given back when a contact was never dialed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from asterisk_cube.core.contacts import Outcome
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

from . import records
from .claims import release_claim
from .state import CampaignRun, DialerState, Line

log = get_logger(__name__)

#: Q.850 causes: busy, congestion and the like are failures; 1/28 mean an unusable number.
BUSY_CAUSES = frozenset({17})
INVALID_CAUSES = frozenset({1, 28})
FAILED_CAUSES = frozenset({17, 21, 27, 31, 34, 38, 41, 42, 44, 47, 58, 88})


def unanswered(result: Any) -> tuple[m.CallState, str, Outcome]:
    """A dial that reached nobody: the call state, end reason and outcome of its cause."""
    cause = result.cause
    if result.error:
        return m.CallState.FAILED, "originate_failed", Outcome.FAILED
    if cause in INVALID_CAUSES:
        return m.CallState.FAILED, f"invalid_number_{cause}", Outcome.INVALID
    if cause in BUSY_CAUSES:
        return m.CallState.FAILED, "busy", Outcome.BUSY
    if cause in FAILED_CAUSES:
        return m.CallState.FAILED, f"failed_{cause}", Outcome.FAILED
    return m.CallState.NO_ANSWER, "no_answer", Outcome.NO_ANSWER


async def finish_unanswered(d: DialerState, line: Line, result: Any) -> None:
    await finish(d, line, *unanswered(result))


async def finish(
    d: DialerState, line: Line, state: m.CallState, reason: str, outcome: Outcome
) -> None:
    """The attempt is over: call row, attempt result, the contact's next state, written
    off the event loop (``d.committed``). The line stays in flight (``d.lines``: counted
    by the pacer, its contact still claimed in the database) until the write is
    committed; only then is it forgotten, so the contact is never offered again before
    its finished attempt is written."""
    if line.call_id not in d.lines or line.finishing:
        return
    line.finishing = True
    now = d.now()
    run = line.run
    callback = None
    created_by = None
    if line.feedback is not None and state == m.CallState.ENDED:
        outcome, callback, created_by = line.feedback
    call_id, contact_id, answered = line.call_id, line.claim.contact_id, line.answered_wall
    rules = run.config.rules

    def write(s: Session) -> None:
        if answered is not None:
            records.contact_answered(s, call_id, answered)
        records.call_finished(s, call_id, state, reason, now)
        if outcome is Outcome.MACHINE and state == m.CallState.ENDED:
            records.correct_attempt(s, call_id, m.CallState.MACHINE)
        records.apply_outcome(s, contact_id, outcome, rules, now, callback, created_by)

    written = False
    try:
        await d.committed("finish", write)
        written = True
    finally:
        if written:
            if state == m.CallState.ABANDONED:
                run.abandoned += 1
                run.answered += 1
            elif state == m.CallState.ENDED:
                run.answered += 1
            log.info(
                "dialer_call_end",
                call=call_id,
                campaign=run.config.name,
                state=state.value,
                reason=reason,
                outcome=outcome.value,
            )
        d.forget_line(line)
        d.wake()


def release_pending_line(d: DialerState, line: Line) -> None:
    """A claimed contact that was not dialed goes back to the list as it was."""
    now = d.now()
    with d.tx("release") as s:
        release_claim(s, line.claim.contact_id, now)
        records.call_finished(s, line.call_id, m.CallState.FAILED, "not_dialed", now)
    d.forget_line(line)


def release_pending(d: DialerState, runs: list[CampaignRun]) -> None:
    """Contacts waiting for another preview agent, of campaigns that stop (or at close)."""
    for run in runs:
        while run.pending_preview:
            release_pending_line(d, run.pending_preview.popleft())


def release_declined(d: DialerState, line: Line) -> None:
    """Every agent let this contact ring: back to the list for the retry interval, not
    dialed (the attempt does not count)."""
    now = d.now()
    with d.tx("release") as s:
        release_claim(
            s, line.claim.contact_id, now, retry_at=now + line.run.config.rules.retry_interval
        )
        records.call_finished(s, line.call_id, m.CallState.FAILED, "no_agent_answered", now)
    log.info(
        "dialer_preview_released",
        call=line.call_id,
        contact=line.claim.contact_id,
        declined=sorted(line.declined),
    )
    d.forget_line(line)
