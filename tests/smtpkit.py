"""A REAL local SMTP server for mail tests (aiosmtpd): :class:`Inbox` collects what arrives.

inbox = Inbox()
port = smtp_server(inbox)          # the pytest fixture of the same name (tests/conftest.py)
... NoteMailer(sessions, SmtpSettings(host="127.0.0.1", port=port)) ...
rcpt_tos, message = inbox.messages[0]
"""

from __future__ import annotations

import email
import socket
from collections.abc import Callable, Iterator
from email import policy

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: collects messages; refuses DATA while ``refuse`` > 0."""

    def __init__(self, refuse: int = 0):
        self.refuse = refuse
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


def smtp_servers() -> Iterator[Callable[..., int]]:
    """Generator behind the ``smtp_server`` fixture: ``start(inbox, port=None) -> port``;
    every server started is stopped at the end."""
    started = []

    def start(handler: Inbox, port: int | None = None) -> int:
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()
