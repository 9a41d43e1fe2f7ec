from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_cube.core.contacts import (
    Callback,
    CampaignRules,
    ContactError,
    ContactState,
    ContactStatus,
    Outcome,
    PickKind,
    callbacks_for,
    due_kind,
    in_window,
    next_contact,
    pick_contacts,
    record_outcome,
    release,
    reservation,
    start_attempt,
    window_status,
)

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2025, 6, 2, 10, 0, tzinfo=OSLO)  # Monday 10:00
MIN = timedelta(minutes=1)
RULES = CampaignRules.build(
    "Europe/Oslo",
    [(d, time(9), time(20)) for d in range(5)],
    max_attempts=3,
    retry_interval=timedelta(minutes=30),
    reservation=timedelta(minutes=20),
)


def c(cid, status=ContactStatus.NEW, attempts=0, next_at=None, position=None, callback=None):
    return ContactState(
        cid,
        status,
        attempts,
        next_attempt_at=next_at,
        position=cid if position is None else position,
        callback=callback,
    )


def ids(picks):
    return [p.contact.contact_id for p in picks]


# -------------------------------------------------------------------- windows


def test_calling_window_in_campaign_zone():
    assert in_window(RULES, NOW)
    assert not in_window(RULES, NOW.replace(hour=8, minute=59))
    assert not in_window(RULES, NOW.replace(hour=20))
    assert not in_window(RULES, datetime(2025, 6, 7, 12, 0, tzinfo=OSLO))  # Saturday
    # 07:30 UTC is 09:30 in Oslo in summer
    assert in_window(RULES, datetime(2025, 6, 2, 7, 30, tzinfo=UTC))
    assert window_status(RULES, NOW.replace(hour=21)).next_open == datetime(
        2025, 6, 3, 9, 0, tzinfo=OSLO
    )


def test_nothing_is_picked_outside_the_window():
    contacts = [c(1), c(2, ContactStatus.NOT_ANSWERED, 1)]
    assert pick_contacts(contacts, RULES, NOW.replace(hour=21), limit=5) == ()
    assert next_contact(contacts, RULES, datetime(2025, 6, 8, 12, 0, tzinfo=OSLO)) is None


def test_holidays_close_the_window():
    rules = CampaignRules.build(
        "Europe/Oslo", [(0, time(9), time(20))], holidays={NOW.date(): "Pinse"}
    )
    assert not in_window(rules, NOW)


def test_default_rules_always_open_and_validation():
    assert in_window(CampaignRules(), datetime(2025, 1, 1, 3, 0, tzinfo=UTC))
    with pytest.raises(ValueError):
        CampaignRules(max_attempts=0)
    with pytest.raises(ValueError):
        CampaignRules(retry_interval=-MIN)


# ------------------------------------------------------------------- ordering


def test_callbacks_before_fresh_before_retries():
    contacts = [
        c(1, ContactStatus.NOT_ANSWERED, 1, next_at=NOW - 50 * MIN),
        c(2),
        c(3, ContactStatus.CALLBACK, callback=Callback(NOW - 5 * MIN)),
        c(4),
        c(5, ContactStatus.NOT_ANSWERED, 2, next_at=NOW - 90 * MIN),
        c(6, ContactStatus.CALLBACK, callback=Callback(NOW - 60 * MIN)),
    ]
    picks = pick_contacts(contacts, RULES, NOW, limit=10)
    assert ids(picks) == [6, 3, 2, 4, 5, 1]
    assert [p.kind for p in picks] == [PickKind.CALLBACK] * 2 + [PickKind.FRESH] * 2 + [
        PickKind.RETRY
    ] * 2
    assert next_contact(contacts, RULES, NOW).contact.contact_id == 6


def test_fresh_contacts_in_list_order():
    contacts = [c(1, position=30), c(2, position=10), c(3, position=20)]
    assert ids(pick_contacts(contacts, RULES, NOW, limit=3)) == [2, 3, 1]


def test_limit():
    contacts = [c(i) for i in range(10)]
    assert ids(pick_contacts(contacts, RULES, NOW, limit=3)) == [0, 1, 2]
    assert pick_contacts(contacts, RULES, NOW, limit=0) == ()


# --------------------------------------------------------------------- limits


def test_retry_not_before_its_time():
    early = c(1, ContactStatus.NOT_ANSWERED, 1, next_at=NOW + MIN)
    assert due_kind(early, RULES, NOW) is None
    assert due_kind(early, RULES, NOW + MIN) is PickKind.RETRY
    assert due_kind(c(2, ContactStatus.NOT_ANSWERED, 1), RULES, NOW) is PickKind.RETRY


def test_never_beyond_max_attempts():
    assert due_kind(c(1, ContactStatus.NOT_ANSWERED, 3), RULES, NOW) is None
    assert due_kind(c(1, ContactStatus.NOT_ANSWERED, 2), RULES, NOW) is PickKind.RETRY
    # a NEW contact released after attempts is a retry, still bounded
    assert due_kind(c(1, ContactStatus.NEW, 1), RULES, NOW) is PickKind.RETRY
    assert due_kind(c(1, ContactStatus.NEW, 3), RULES, NOW) is None


def test_never_a_contact_being_dialed_or_closed():
    for status in (
        ContactStatus.DIALING,
        ContactStatus.DONE,
        ContactStatus.EXHAUSTED,
        ContactStatus.INVALID,
    ):
        assert due_kind(c(1, status), RULES, NOW) is None
    assert pick_contacts([c(1, ContactStatus.DIALING)], RULES, NOW) == ()


def test_callback_not_before_due():
    cb = c(1, ContactStatus.CALLBACK, callback=Callback(NOW + MIN))
    assert due_kind(cb, RULES, NOW) is None
    assert due_kind(cb, RULES, NOW + MIN) is PickKind.CALLBACK
    assert due_kind(c(2, ContactStatus.CALLBACK), RULES, NOW) is None  # no callback data


def test_due_callback_waits_for_the_window():
    cb = c(1, ContactStatus.CALLBACK, callback=Callback(NOW.replace(hour=21)))
    evening = NOW.replace(hour=21, minute=30)
    assert due_kind(cb, RULES, evening) is PickKind.CALLBACK
    assert pick_contacts([cb], RULES, evening) == ()
    next_morning = datetime(2025, 6, 3, 9, 0, tzinfo=OSLO)
    assert ids(pick_contacts([cb, c(2)], RULES, next_morning, limit=2)) == [1, 2]


# --------------------------------------------------------------- reservations


def test_callback_reserved_for_its_agent():
    cb = c(1, ContactStatus.CALLBACK, callback=Callback(NOW - 5 * MIN, agent_id=7, comment="hi"))
    fresh = c(2)
    logged = frozenset({7, 8})
    # for the pool: left for agent 7
    assert ids(pick_contacts([cb, fresh], RULES, NOW, 5, logged_in=logged)) == [2]
    # for another agent: not offered
    assert ids(pick_contacts([cb, fresh], RULES, NOW, 5, agent_id=8, logged_in=logged)) == [2]
    # for agent 7: first, with the comment and the reservation end
    pick = next_contact([cb, fresh], RULES, NOW, agent_id=7, logged_in=logged)
    assert pick.contact.contact_id == 1
    assert pick.reserved_for == 7
    assert pick.reserved_until == NOW + 15 * MIN
    assert pick.comment == "hi"


def test_reservation_expires_then_anyone():
    cb = c(1, ContactStatus.CALLBACK, callback=Callback(NOW - 20 * MIN, agent_id=7))
    pick = next_contact([cb], RULES, NOW, agent_id=8, logged_in=frozenset({7, 8}))
    assert pick.contact.contact_id == 1 and pick.reserved_for is None
    assert reservation(cb.callback, RULES, NOW - MIN, frozenset({7})) == (7, NOW)
    assert reservation(cb.callback, RULES, NOW, frozenset({7})) == (None, None)


def test_reserved_agent_logged_off_goes_to_first_free_agent():
    cb = c(1, ContactStatus.CALLBACK, callback=Callback(NOW - MIN, agent_id=7))
    pick = next_contact([cb], RULES, NOW, logged_in=frozenset({8}))
    assert pick.contact.contact_id == 1 and pick.reserved_for is None


def test_callback_for_all_agents_is_never_reserved():
    cb = c(1, ContactStatus.CALLBACK, callback=Callback(NOW - MIN, comment="ring back"))
    pick = next_contact([cb], RULES, NOW, logged_in=frozenset({7}))
    assert pick.reserved_for is None and pick.comment == "ring back"


def test_own_reserved_callback_comes_before_older_callbacks_for_all():
    older = c(1, ContactStatus.CALLBACK, callback=Callback(NOW - 10 * MIN))
    mine = c(2, ContactStatus.CALLBACK, callback=Callback(NOW - MIN, agent_id=7))
    picks = pick_contacts([older, mine], RULES, NOW, 2, agent_id=7, logged_in=frozenset({7}))
    assert ids(picks) == [2, 1]


def test_scheduled_calls_view():
    a = Callback(NOW + 60 * MIN, agent_id=7)
    b = Callback(NOW + 30 * MIN)
    other = Callback(NOW, agent_id=8)
    assert callbacks_for([a, b, other], 7) == (b, a)


# ------------------------------------------------------------------- outcomes


def test_attempt_then_no_answer_is_retried_later():
    contact = start_attempt(c(1), NOW)
    assert contact.status is ContactStatus.DIALING
    assert contact.attempts == 1 and contact.last_attempt_at == NOW
    after = record_outcome(contact, Outcome.NO_ANSWER, RULES, NOW + MIN)
    assert after.status is ContactStatus.NOT_ANSWERED
    assert after.next_attempt_at == NOW + 31 * MIN
    assert due_kind(after, RULES, NOW + 30 * MIN) is None
    assert due_kind(after, RULES, NOW + 31 * MIN) is PickKind.RETRY


@pytest.mark.parametrize(
    "outcome",
    [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.MACHINE, Outcome.ABANDONED],
)
def test_not_reached_outcomes_retry_until_exhausted(outcome):
    contact = c(1)
    for attempt in range(1, 4):
        contact = start_attempt(contact, NOW)
        contact = record_outcome(contact, outcome, RULES, NOW)
        expected = ContactStatus.NOT_ANSWERED if attempt < 3 else ContactStatus.EXHAUSTED
        assert contact.status is expected
    assert contact.attempts == 3 and contact.next_attempt_at is None
    with pytest.raises(ContactError):
        start_attempt(contact, NOW)


def test_answering_machine_feedback_reopens_a_contact():
    """F-E5: the agent marks an answered call as answering machine after the fact."""
    contact = record_outcome(start_attempt(c(1), NOW), Outcome.FINAL, RULES, NOW)
    assert contact.status is ContactStatus.DONE
    contact = record_outcome(contact, Outcome.MACHINE, RULES, NOW + MIN)
    assert contact.status is ContactStatus.NOT_ANSWERED
    assert contact.next_attempt_at == NOW + 31 * MIN


def test_final_and_invalid_close_the_contact():
    contact = start_attempt(c(1), NOW)
    assert record_outcome(contact, Outcome.FINAL, RULES, NOW).status is ContactStatus.DONE
    assert record_outcome(contact, Outcome.INVALID, RULES, NOW).status is ContactStatus.INVALID


def test_callback_outcome_starts_a_new_series():
    contact = c(1, ContactStatus.NOT_ANSWERED, 2)
    contact = start_attempt(contact, NOW)
    assert contact.attempts == 3
    due = NOW + timedelta(days=1)
    contact = record_outcome(
        contact, Outcome.CALLBACK, RULES, NOW, Callback(due, agent_id=7, comment="after lunch")
    )
    assert contact.status is ContactStatus.CALLBACK
    assert contact.attempts == 0 and contact.next_attempt_at == due
    assert due_kind(contact, RULES, due) is PickKind.CALLBACK
    # the callback dial is not answered: ordinary retries follow, bounded again
    contact = record_outcome(start_attempt(contact, due), Outcome.NO_ANSWER, RULES, due)
    assert contact.status is ContactStatus.NOT_ANSWERED and contact.callback is None
    assert contact.attempts == 1
    with pytest.raises(ContactError):
        record_outcome(contact, Outcome.CALLBACK, RULES, NOW)


def test_never_dialed_twice_at_once():
    contact = start_attempt(c(1), NOW)
    with pytest.raises(ContactError):
        start_attempt(contact, NOW)


def test_release_undoes_an_undialed_claim():
    back = release(start_attempt(c(1), NOW), NOW)
    assert (back.status, back.attempts, back.next_attempt_at) == (ContactStatus.NEW, 0, None)
    retry = c(2, ContactStatus.NOT_ANSWERED, 1, next_at=NOW - MIN)
    back = release(start_attempt(retry, NOW), NOW)
    assert back.status is ContactStatus.NOT_ANSWERED and back.attempts == 1
    cb = c(3, ContactStatus.CALLBACK, callback=Callback(NOW))
    assert release(start_attempt(cb, NOW), NOW).status is ContactStatus.CALLBACK
    with pytest.raises(ContactError):
        release(c(4), NOW)


# ----------------------------------------------------------------- properties

statuses = st.sampled_from(list(ContactStatus))
offsets = st.integers(-600, 600).map(lambda m: NOW + m * MIN)


@st.composite
def contact_sets(draw):
    contacts = []
    for cid in range(draw(st.integers(0, 15))):
        status = draw(statuses)
        callback = None
        if status is ContactStatus.CALLBACK or draw(st.booleans()):
            callback = Callback(draw(offsets), draw(st.one_of(st.none(), st.integers(1, 3))))
        contacts.append(
            ContactState(
                cid,
                status,
                draw(st.integers(0, 4)),
                next_attempt_at=draw(st.one_of(st.none(), offsets)),
                position=draw(st.integers(0, 5)),
                callback=callback,
            )
        )
    return contacts


@settings(max_examples=400, deadline=None)
@given(
    contact_sets(),
    offsets,
    st.one_of(st.none(), st.integers(1, 3)),
    st.sets(st.integers(1, 3)).map(frozenset),
)
def test_selection_never_breaks_the_limits(contacts, now, agent_id, logged_in):
    picks = pick_contacts(contacts, RULES, now, 20, agent_id=agent_id, logged_in=logged_in)
    if picks:
        assert in_window(RULES, now)
    assert len({p.contact.contact_id for p in picks}) == len(picks)
    ranks = {PickKind.CALLBACK: 0, PickKind.FRESH: 1, PickKind.RETRY: 2}
    assert [ranks[p.kind] for p in picks] == sorted(ranks[p.kind] for p in picks)
    for p in picks:
        contact = p.contact
        assert contact.status not in (
            ContactStatus.DIALING,
            ContactStatus.DONE,
            ContactStatus.EXHAUSTED,
            ContactStatus.INVALID,
        )
        assert contact.attempts < RULES.max_attempts
        if contact.status is ContactStatus.NOT_ANSWERED and contact.next_attempt_at:
            assert contact.next_attempt_at <= now
        if p.kind is PickKind.CALLBACK:
            assert contact.callback.due_at <= now
            if p.reserved_for is not None:
                assert p.reserved_for == agent_id
                assert p.reserved_for in logged_in
                assert now < p.reserved_until
        holder, _ = (
            reservation(contact.callback, RULES, now, logged_in)
            if p.kind is PickKind.CALLBACK
            else (None, None)
        )
        assert holder in (None, agent_id)
    # everything dialable and not reserved for someone else was picked (limit is large)
    if in_window(RULES, now):
        for contact in contacts:
            kind = due_kind(contact, RULES, now)
            if kind is None:
                continue
            if kind is PickKind.CALLBACK:
                holder, _ = reservation(contact.callback, RULES, now, logged_in)
                if holder not in (None, agent_id):
                    continue
            assert contact.contact_id in {p.contact.contact_id for p in picks}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=12))
def test_outcome_sequences_respect_attempts(outcomes):
    contact = c(1)
    now = NOW
    for outcome in outcomes:
        if due_kind(contact, RULES, now) is None:
            now += (
                timedelta(hours=1)
                if contact.status is not ContactStatus.CALLBACK
                else (timedelta(days=1))
            )
            if due_kind(contact, RULES, now) is None:
                break
        contact = start_attempt(contact, now)
        assert contact.attempts <= RULES.max_attempts
        cb = Callback(now + timedelta(hours=2)) if outcome is Outcome.CALLBACK else None
        contact = record_outcome(contact, outcome, RULES, now, cb)
        if outcome is Outcome.FINAL:
            assert contact.status is ContactStatus.DONE
            break
        if outcome is Outcome.INVALID:
            break
    assert contact.status is not ContactStatus.DIALING
