"""Demo data: enough configuration to try every screen against the sandbox PBX.

Numbers use the sandbox's carrier trunk: SIPp callers dial the DIDs below.
Idempotent: if the demo lines exist, nothing is changed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.services import answering
from asterisk_cube.services import provisioning as p

SERVICE_DID = "4721000001"
HOTLINE_DID = "4721000002"
CLIENT_DID = "4721000003"
#: the person's own line: only agent01 and the supervisor serve it, so a test call
#: (`asterisk-cube demo call`) reaches them, not a simulated agent
TEST_DID = "4721000004"
TEST_LINE_AGENTS = ("agent01", "supervisor")
OUTBOUND_CALLER_ID = "4721000009"
OUTBOUND_CAMPAIGN = "Winter offer"
CLIENT = "Fjord Rørlegger AS"
#: numbers on the answering-service client's ad-block list (the traffic simulator calls
#: from them: they are turned away before an agent answers in the client's name)
ADBLOCKED = ("+4781549300", "+4781549301", "+4722998877")


def load_demo(
    s: Session, agents: int = 4, password: str = "demo-password", *, force: bool = False
) -> str:
    """Load the demo data into an empty database. A database that already has users or
    lines (a production one) is refused unless ``force``: the demo adds an admin and a
    supervisor with a known password."""
    if s.scalar(select(m.Line).where(m.Line.did == SERVICE_DID)):
        return "demo data already loaded" + _test_line(s)
    if not force and (
        s.scalar(select(m.Agent.id).limit(1)) or s.scalar(select(m.Line.id).limit(1))
    ):
        raise p.ProvisioningError(
            "this database already has users or lines: demo data (an admin and a supervisor "
            "with a known password) is only loaded into an empty database; "
            "use --force to add it anyway"
        )
    p.add_campaign(s, "New customers", direction="inbound", forced_registration=True)
    p.add_campaign(
        s,
        OUTBOUND_CAMPAIGN,
        direction="outbound",
        mode="predictive",
        skill="sales",
        caller_id=OUTBOUND_CALLER_ID,
        windows="mon-fri 09:00-20:00, sat 10:00-16:00",
    )
    p.add_client(
        s,
        CLIENT,
        greeting="{greeting}, Fjord Rørlegger, you are speaking with {agent}.",
        greeting_informal="Hi, Fjord Rørlegger here, {agent} speaking!",
        instruction="Ask what the call is about; urgent leaks go to the on-call plumber.",
        hours="mon-fri 07:00-16:00",
        holiday_country="NO",
        handling="forward",
        forward1="4721000101",
        forward2="4721000102",
        own_numbers=["4721000100"],
        recipients=["post@fjord-rorlegger.example"],
        adblock=True,
    )
    answering.add_blocks(s, ADBLOCKED[:2], CLIENT, known_advertiser=True, reason="telemarketing")
    answering.add_blocks(s, ADBLOCKED[2:], CLIENT, reason="survey company")
    p.add_line(s, SERVICE_DID, "Support", priority=5)
    p.add_line(s, HOTLINE_DID, "Sales hotline", priority=10, campaign="New customers")
    p.add_line(s, CLIENT_DID, "Fjord Rørlegger", priority=8, client="Fjord Rørlegger AS")
    all_lines = [SERVICE_DID, HOTLINE_DID, CLIENT_DID]
    for i in range(1, agents + 1):
        p.add_agent(
            s,
            f"agent{i:02d}",
            name=f"Agent {i:02d}",
            endpoint=f"PJSIP/agent{i:02d}",
            password=password,
            # the campaign's skill: odd agents, but not agent01 (the person's) unless it is
            # the only agent: an agent the predictive dialer dials for gets no inbound
            # offer meanwhile (F-I5), and the person's test call would wait
            skills=["sales"] if i % 2 and (i > 1 or agents == 1) else [],
            lines=all_lines,
        )
    p.add_agent(
        s,
        "supervisor",
        name="Sam Supervisor",
        role="supervisor",
        password=password,
        lines=all_lines,
    )
    p.add_agent(s, "admin", name="Ada Admin", role="admin", password=password)
    _test_line(s)
    p.add_category(s, "Customer's mood")
    p.add_topics(s, "Customer's mood", ["Positive", "Negative", "Neutral"])
    p.add_category(s, "Product", multi=True)
    p.add_topics(s, "Product", ["General", "SMS survey", "Admin application", "Statistics"])
    p.add_category(s, "Support", multi=True)
    p.add_topics(s, "Support", ["Add users", "Change profiles", "Login problems"])
    p.add_category(s, "Outcome", campaign="Winter offer")
    p.add_topics(s, "Outcome", ["Sale", "Not interested"], outcome="final", campaign="Winter offer")
    p.add_topics(
        s, "Outcome", ["Interested, call back"], outcome="callback", campaign="Winter offer"
    )
    p.add_topics(
        s, "Outcome", ["Answering machine / not answered"], outcome="retry", campaign="Winter offer"
    )
    return (
        f"demo data loaded: 4 lines ({SERVICE_DID} support, {HOTLINE_DID} hotline, {CLIENT_DID} "
        f"answering service, {TEST_DID} test calls), {agents} agents agent01..agent{agents:02d}, "
        f"users supervisor and admin (password {password!r})"
    )


def _test_line(s: Session) -> str:
    """The test-call line (added to a demo loaded before it existed too)."""
    if s.scalar(select(m.Line).where(m.Line.did == TEST_DID)):
        return ""
    p.add_line(s, TEST_DID, "Test calls", priority=20)
    for username in TEST_LINE_AGENTS:
        if s.scalar(select(m.Agent).where(m.Agent.username == username)):
            p.grant_lines(s, username, [TEST_DID])
    return f"; test-call line {TEST_DID} added"
