"""The demo's mail sink: a tiny local SMTP server that keeps every message as a file.

The demo's answering-service client mails its call notes (docs/answering-service.md), so
``serve`` needs an SMTP server and ``doctor`` checks that one answers. On a demo machine
there is none: ``demo run`` starts this one on the sandbox instance's base+525 and points
``[smtp]`` at it; each message lands in ``<data dir>/mail/<n>.eml`` to look at.

It speaks just what ``aiosmtplib`` (the product's mailer) sends: EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT; no TLS, no authentication, 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from pathlib import Path

MAX_MESSAGE = 10 * 1024 * 1024


class MailSink:
    def __init__(self, directory: Path, port: int, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.received = 0
        self._serial = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 asterisk-cube demo mail sink")
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), 60)
                if not raw:
                    return
                verb = raw.decode(errors="replace").strip().split(" ", 1)[0].upper()
                if verb == "EHLO":
                    say("250-asterisk-cube demo")
                    say("250 8BITMIME")
                elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                    say("250 OK")
                elif verb == "DATA":
                    say("354 end with <CRLF>.<CRLF>")
                    await writer.drain()
                    lines: list[bytes] = []
                    size = 0
                    while (line := await asyncio.wait_for(reader.readline(), 60)) not in (
                        b".\r\n",
                        b".\n",
                        b"",
                    ):
                        size += len(line)
                        if size <= MAX_MESSAGE:
                            lines.append(line[1:] if line.startswith(b"..") else line)
                    self._keep(b"".join(lines))
                    say("250 OK: kept")
                elif verb == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    return
                else:
                    say("502 not implemented")
                await writer.drain()
        except (TimeoutError, ConnectionError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _keep(self, message: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._serial):04d}.eml"
        (self.directory / name).write_bytes(message)
        self.received += 1

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._session, self.host, self.port)
            )
        except OSError as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    def start(self) -> MailSink:
        """Listen (in a thread of its own); OSError if the port is taken."""
        self._thread = threading.Thread(target=self._run, name="demo-mail-sink", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
