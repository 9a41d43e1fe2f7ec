"""The demo's traffic simulator's decisions (issue #16): seeded and repeatable, a rate that
varies over its cycle, every line called, some callers impatient or ad-blocked, campaign
customers answering about a third of the time; and the demo's mail sink takes what the
product's mailer (aiosmtplib) sends."""

from __future__ import annotations

import random
from collections import Counter
from email.message import EmailMessage

import aiosmtplib

from asterisk_cube.demo.mailsink import MailSink
from asterisk_cube.demo.traffic import CYCLE_S, LINE_WEIGHTS, Plan
from asterisk_cube.services.demo_data import ADBLOCKED, CLIENT_DID


def test_same_seed_same_traffic():
    a, b = Plan(random.Random(7)), Plan(random.Random(7))
    assert [a.caller() for _ in range(50)] == [b.caller() for _ in range(50)]


def test_the_rate_varies_over_the_cycle():
    plan = Plan(random.Random(1), calls_per_minute=3.0)
    rates = [plan.rate(t) * 60 for t in range(0, int(CYCLE_S), 10)]
    assert min(rates) < 1.5 < 4.5 < max(rates)
    assert abs(sum(rates) / len(rates) - 3.0) < 0.05


def test_callers_reach_every_line_some_give_up_some_are_adblocked():
    plan = Plan(random.Random(3))
    callers = [plan.caller() for _ in range(2000)]
    assert {c.did for c in callers} == set(LINE_WEIGHTS)
    kinds = Counter(c.kind for c in callers)
    assert 0.2 < kinds["impatient"] / 2000 < 0.3
    blocked = [c for c in callers if c.kind == "adblocked"]
    assert blocked and all(c.did == CLIENT_DID and c.number in ADBLOCKED for c in blocked)


def test_about_a_third_of_the_campaign_customers_answer():
    plan = Plan(random.Random(5))
    behaviour = Counter(plan.customer(i)[4] for i in range(3000))  # +479 B ...
    assert 0.30 < behaviour["1"] / 3000 < 0.38
    assert set(behaviour) == {"1", "2", "3", "4", "5"}


def test_topics_never_ask_for_a_callback_time():
    plan = Plan(random.Random(2))
    categories = [
        {
            "multi": False,
            "topics": [
                {"topic_id": 1, "name": "Sale"},
                {"topic_id": 2, "name": "Interested, call back"},
            ],
        },
    ]
    assert {t for _ in range(50) for t in plan.pick_topics(categories)} == {1}


async def test_the_mail_sink_keeps_what_the_mailer_sends(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = MailSink(tmp_path / "mail", port).start()
    try:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "cube@localhost", "post@example.org", "Note"
        msg.set_content("Please call back.\n.leading dot")
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)
    finally:
        sink.stop()
    (kept,) = (tmp_path / "mail").iterdir()
    text = kept.read_text()
    assert "Subject: Note" in text and "\n.leading dot" in text


def test_an_agent_with_another_password_is_tried_once_not_every_few_seconds(monkeypatch, tmp_path):
    """An admin's agent09 with its own password: retrying it every 3 s locked it out with the
    login throttle (429) while the demo ran."""
    import asyncio

    from asterisk_cube.demo import traffic as t
    from asterisk_cube.demo.desk_client import DeskError

    tries = []

    async def refused(self):
        tries.append(self.username)
        raise DeskError(401, {"error": "bad_login"})

    monkeypatch.setattr(t.Agent, "run", refused)
    sim = t.Traffic.__new__(t.Traffic)
    agent = t.Agent(sim, "agent09", 9)
    asyncio.run(asyncio.wait_for(sim._keep(agent), 2))
    assert tries == ["agent09"]
