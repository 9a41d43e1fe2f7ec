"""An answering-service client for web tests: stored in the test database (the script is
built from it exactly as in production) and mirrored on a :class:`FakeDesk` line.

    ids = add_client(sessions, desk, line_id=7, tone="formal")
    # desk line 7 (DID FJORD_DID) now carries Fjord Regnskap AS's calls
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk_cube.db.session import transaction
from asterisk_cube.services import answering
from asterisk_cube.services import provisioning as p

from .desk import FakeDesk

CLIENT = "Fjord Regnskap AS"
FJORD_DID = "+4721000077"
OWN_NUMBER = "+4722000000"
FORMAL_GREETING = "{greeting}, {client}, du snakker med {agent}."
INFORMAL_GREETING = "Hei, du har ringt {client} – {agent} her!"
TARGETS = ["+4722000001", "+4722000002"]
SALES_TARGETS = ["PJSIP/agent05", "PJSIP/agent06"]


@dataclass(frozen=True)
class ClientIds:
    client_id: int
    line_id: int
    accounting: int  # employee with note handling
    sales: int  # employee with forward handling
    faq_invoice: int
    faq_buy: int


def add_client(
    sessions,
    desk: FakeDesk | None,
    *,
    line_id: int = 7,
    tone: str = "formal",
    hours: str = "mon-sun 00:00-24:00",
    name: str = CLIENT,
    did: str = FJORD_DID,
    exception: str | None = None,
    recipients: tuple[str, ...] = ("office@fjord.example",),
    own_number: str = OWN_NUMBER,
) -> ClientIds:
    """Store the client (forward handling, two employees, two FAQ entries) and give the
    fake desk a line for it (``desk`` may be None: DB only)."""
    with transaction(sessions) as s:
        client = p.add_client(
            s,
            name,
            greeting=FORMAL_GREETING,
            greeting_informal=INFORMAL_GREETING,
            instruction="Ask what the call is about and who it is for.",
            tone=tone,
            hours=hours,
            handling="forward",
            forward1=TARGETS[0],
            forward2=TARGETS[1],
            own_numbers=[own_number],
            recipients=list(recipients),
        )
        p.add_line(s, did.lstrip("+"), name, client=name)
        accounting = answering.add_employee(
            s,
            name,
            name="Kari Holm",
            department="Regnskap",
            title="Regnskapsfører",
            handling="note",
            email="kari.holm@fjord.example",
        )
        sales = answering.add_employee(
            s,
            name,
            name="Ola Berg",
            department="Salg",
            handling="forward",
            forward1=SALES_TARGETS[0],
            forward2=SALES_TARGETS[1],
            info="Sits in Bergen",
        )
        invoice = answering.add_faq(
            s, name, "Question about an invoice?", "Take a note for accounting.", handling="note"
        )
        buy = answering.add_faq(
            s, name, "Wants to buy something?", "Sales takes it.", employee="Ola Berg"
        )
        if exception:
            answering.add_exception(s, name, exception, until="2099-12-31", starts="2000-01-01")
        ids = ClientIds(client.id, line_id, accounting.id, sales.id, invoice.id, buy.id)
    if desk is not None:
        attach(desk, ids, did=did, name=name)
    return ids


def attach(
    desk: FakeDesk, ids: ClientIds, *, did: str = FJORD_DID, name: str = CLIENT, hours="open"
) -> None:
    """Give the fake desk a line for the stored client ``ids`` (``hours``: what the entry
    decided for its calls: open, closed or holiday)."""
    desk.add_line(ids.line_id, did, name, kind="answering", client_id=ids.client_id, hours=hours)
    desk.set_forward_targets(ids.client_id, TARGETS)
    desk.set_forward_targets(ids.client_id, SALES_TARGETS, employee_id=ids.sales)
    desk.set_forward_targets(ids.client_id, [], employee_id=ids.accounting)
    desk.set_own_numbers(ids.client_id, [OWN_NUMBER, did])
