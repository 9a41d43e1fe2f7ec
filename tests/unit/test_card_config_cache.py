# ruff: noqa: F811 - pytest fixtures are parameters named like the imported fixture
"""The call card's configured part (enquiry categories, their topics, the campaign's name)
is read once per campaign, not per call, and a configuration change made with the CLI
still shows on the next call's card (issue #19)."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from support.fakes import FakeTelephony
from test_cli import run  # noqa: F401 (fixture)
from test_distributor import StepClock, make, settle, start_work, world  # noqa: F401 (fixture)

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.config_version import ConfigWatcher
from asterisk_cube.db.session import transaction
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p


def count_category_reads(engine) -> list[str]:
    seen: list[str] = []

    def before(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "enquiry_categor" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    return seen


async def answered_card(d, agent_id: int, line_id: int, channel: str, caller: str):
    call_id = d.call_arrived(channel, line_id, caller)
    await d.accept(agent_id, call_id)
    await settle()
    view = await d.view(agent_id)
    assert view.call is not None and view.call.call_id == call_id
    return call_id, view.call


async def hang_up_and_close(d, agent_id: int, call_id: int, channel: str) -> None:
    d.caller_left(channel)
    await settle()
    await d.close_call(agent_id, call_id)


async def test_the_categories_are_read_once_per_campaign_not_per_call(world):
    sessions, ids, lines = world
    d = make(world)
    reads = count_category_reads(sessions.kw["bind"])
    ann = ids["ann"]
    await start_work(d, ann, [lines["100"], lines["300"]])
    first, card = await answered_card(d, ann, lines["100"], "ch1", "+4791000001")
    assert [cat.name for cat in card.categories] == ["Mood", "Product"]
    assert [t.name for t in card.categories[0].topics] == ["Happy", "Sad"]
    assert len(reads) == 1
    await hang_up_and_close(d, ann, first, "ch1")
    second, card = await answered_card(d, ann, lines["100"], "ch2", "+4791000002")
    assert [cat.name for cat in card.categories] == ["Mood", "Product"]
    assert len(reads) == 1  # the second call's card: no read of the categories
    await hang_up_and_close(d, ann, second, "ch2")
    _, card = await answered_card(d, ann, lines["300"], "ch3", "+4791000003")
    assert card.campaign == "Hot"  # another campaign: its own read
    assert len(reads) == 2


async def test_a_category_added_with_the_cli_shows_on_the_next_calls_card(run):
    from asterisk_cube.cli.common import CliContext

    sessions = CliContext().sessions()
    with transaction(sessions) as s:
        p.add_line(s, "100", "Low")
        p.add_agent(s, "ann", endpoint="PJSIP/ann", lines=["100"])
        p.add_category(s, "Mood")
        p.add_topics(s, "Mood", ["Happy"])
        ann = s.scalars(select(m.Agent.id)).one()
        line = s.scalars(select(m.Line.id)).one()
    d = Distributor(sessions, EventHub(), FakeTelephony(), StepClock())
    d.load()
    watcher = ConfigWatcher(sessions.kw["bind"])  # serve's watcher and reload (wiring)
    watcher.prime()
    watcher.add("acd", d.reload_config)
    await start_work(d, ann, [line])
    first, card = await answered_card(d, ann, line, "ch1", "+4791000001")
    assert [cat.name for cat in card.categories] == ["Mood"]

    run("enquiry", "add-category", "Complaint")
    run("enquiry", "add-topic", "Mood", "Sad")
    assert await watcher.check()  # the version moved: the distributor reloaded

    view = await d.view(ann)  # the call in progress keeps the card it was given
    assert [cat.name for cat in view.call.categories] == ["Mood"]
    await hang_up_and_close(d, ann, first, "ch1")
    _, card = await answered_card(d, ann, line, "ch2", "+4791000002")
    by_name = {cat.name: cat for cat in card.categories}
    assert sorted(by_name) == ["Complaint", "Mood"]
    assert [t.name for t in by_name["Mood"].topics] == ["Happy", "Sad"]


async def test_a_cards_contacts_are_one_core_read_without_an_orm_session(world):
    """The caller's contacts (with each one's campaign) are read for every card, in one
    statement on a plain connection: no ORM session per call (issue #19)."""
    sessions, ids, lines = world
    with transaction(sessions) as s:
        hot = s.scalars(select(m.Campaign.id)).one()
        s.add(m.Contact(phone="+4791000002", name="Kari", campaign_id=hot, extra={"vip": 1}))
        s.add(m.Contact(phone="+4791000002", name="Ola"))
    d = make(world)
    ann = ids["ann"]
    await start_work(d, ann, [lines["100"]])
    first, _ = await answered_card(d, ann, lines["100"], "ch1", "+4791000001")
    await hang_up_and_close(d, ann, first, "ch1")
    orm: list[object] = []
    selects: list[str] = []

    def orm_execute(state) -> None:
        orm.append(state.statement)

    event.listen(Session, "do_orm_execute", orm_execute)
    event.listen(
        sessions.kw["bind"],
        "before_cursor_execute",
        lambda conn, cursor, statement, *a: selects.append(statement),
    )
    try:
        _, card = await answered_card(d, ann, lines["100"], "ch2", "+4791000002")
    finally:
        event.remove(Session, "do_orm_execute", orm_execute)
    assert [(ct.name, ct.campaign, ct.status, ct.extra) for ct in card.contacts] == [
        ("Kari", "Hot", "new", {"vip": 1}),
        ("Ola", None, "new", {}),
    ]
    assert orm == []
    assert len([x for x in selects if "FROM contacts" in x]) == 1, selects
