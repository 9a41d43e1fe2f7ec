"""One FastAGI session as the routes see it: the AGI environment, commands with their
parsed replies (``AgiResult``, ``AgiError``, ``AgiHangup``) under a reply deadline, and the
``ping`` route. :class:`asterisk_cube.agi.server.AgiServer` accepts the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

COMMAND_TIMEOUT = 10.0  # seconds a command's reply is awaited (Asterisk: milliseconds)


AgiRoute = Callable[["AgiSession"], Awaitable[None]]

# "200 result=1 (some value) endpos=1234". panoramisk's parse_agi_result loses "(timeout)"
# after an empty result and reads a variable whose value is "hangup" as a hang-up.
_RESULT_RE = re.compile(
    r"^200 result=(?P<result>\S*)(?:\s+\((?P<data>.*)\))?(?P<extra>(?:\s+\w+=\S*)*)\s*$"
)


class AgiError(Exception):
    """Asterisk answered a command with an error code (510 invalid, 520 usage, ...)."""

    def __init__(self, code: int, line: str):
        super().__init__(f"{code} {line}")
        self.code = code
        self.line = line


class AgiHangup(Exception):
    """The channel hung up (``HANGUP``, ``511``, ``result=-1``) or the connection closed."""


@dataclass(frozen=True)
class AgiResult:
    code: int  # 200 on success
    result: str  # the value after ``result=``
    data: str  # the text in parentheses, e.g. "timeout", or "" if none
    extra: dict[str, str]  # trailing key=value pairs, e.g. {"endpos": "1234"}
    line: str  # the raw reply line

    @property
    def value(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


def parse_agi_env(raw: bytes, encoding: str = "utf-8") -> dict[str, str]:
    """The ``agi_*: value`` lines of an AGI environment block as a dict."""
    headers: dict[str, str] = {}
    for line in raw.decode(encoding, errors="replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("agi_"):
            headers[key] = value
        elif line.endswith(":") and line.startswith("agi_"):
            headers[line[:-1]] = ""  # "agi_arg_1:" with an empty value
    return headers


def quote_arg(value: object) -> str:
    """Quote one AGI command argument (Asterisk splits on blanks, honours "..." and \\)."""
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError("AGI arguments cannot contain line breaks")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_script(script: str) -> tuple[str, dict[str, str]]:
    """``"entry?client=7"`` -> ``("entry", {"client": "7"})``; leading slashes dropped."""
    path, params = _parse_script(script)
    return path, dict(params)


@functools.lru_cache(maxsize=1024)
def _parse_script(script: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The dialplan sends the same few scripts (one per DID) call after call: remember their
    parse (``parse_qsl`` is ~2 us of a ~150 us session)."""
    path, _, query = script.partition("?")
    return path.strip("/"), tuple(urllib.parse.parse_qsl(query, keep_blank_values=True))


class AgiSession:
    """One FastAGI connection: the environment plus command helpers."""

    def __init__(
        self,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        encoding: str = "utf-8",
        *,
        waits: dict[asyncio.StreamWriter, float] | None = None,
        command_timeout: float = COMMAND_TIMEOUT,
    ):
        self.headers = headers
        self.reader = reader
        self.writer = writer
        self.encoding = encoding
        # The server's watchdog cuts a reply wait registered here after command_timeout
        # (one dict entry per command instead of an asyncio.timeout: ~0.3 us, not ~4 us).
        self.waits = waits
        self.command_timeout = command_timeout
        self.route, self.params = split_script(headers.get("agi_network_script", ""))
        self.hung_up = False

    # --- environment -------------------------------------------------------------------

    @property
    def channel(self) -> str:
        return self.headers.get("agi_channel", "")

    @property
    def unique_id(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def caller_number(self) -> str:
        return self.headers.get("agi_callerid", "")

    @property
    def caller_presentation(self) -> str:
        """``agi_callingpres``: Asterisk's presentation of the caller's number as a number
        (0x20 set: restricted, 0x40: unavailable; see ``core.numbers.presentation_withheld``)."""
        return self.headers.get("agi_callingpres", "")

    @property
    def caller_name(self) -> str:
        return self.headers.get("agi_calleridname", "")

    @property
    def dnid(self) -> str:
        return self.headers.get("agi_dnid", "")

    @property
    def extension(self) -> str:
        return self.headers.get("agi_extension", "")

    @property
    def context(self) -> str:
        return self.headers.get("agi_context", "")

    @property
    def args(self) -> list[str]:
        """``agi_arg_1``, ``agi_arg_2``, ... (the AGI() application's extra arguments)."""
        out = []
        n = 1
        while f"agi_arg_{n}" in self.headers:
            out.append(self.headers[f"agi_arg_{n}"])
            n += 1
        return out

    # --- commands ----------------------------------------------------------------------

    async def _readline(self, timeout: float | None) -> str:
        try:
            if timeout is None:  # the usual case: a timeout context costs ~2 us even unarmed
                raw = await self.reader.readline()
            else:
                async with asyncio.timeout(timeout):
                    raw = await self.reader.readline()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            self.hung_up = True
            raise AgiHangup(f"connection error: {exc}") from exc
        if not raw:
            self.hung_up = True
            raise AgiHangup("connection closed")
        return raw.decode(self.encoding, errors="replace").rstrip("\r\n")

    async def command(self, line: str, timeout: float | None = None) -> AgiResult:
        """Send one AGI command and return its ``200`` reply.

        Raises :class:`AgiHangup` when the channel is gone, :class:`AgiError` for other
        error replies, ``TimeoutError`` if ``timeout`` (seconds) passes without a reply.
        Without ``timeout``, the server's ``command_timeout`` applies: the connection is
        closed and this raises :class:`AgiHangup`.
        """
        if self.hung_up:
            raise AgiHangup("channel already hung up")
        if "\n" in line or "\r" in line:
            raise ValueError("an AGI command is a single line")
        waits = self.waits if timeout is None else None
        if waits is not None:
            waits[self.writer] = time.monotonic() + self.command_timeout
        try:
            return await self._command(line, timeout)
        finally:
            if waits is not None:
                waits.pop(self.writer, None)

    async def _command(self, line: str, timeout: float | None) -> AgiResult:
        try:
            self.writer.write(line.encode(self.encoding) + b"\n")
            await self.writer.drain()
        except ConnectionError as exc:
            self.hung_up = True
            raise AgiHangup(f"connection error: {exc}") from exc
        while True:
            reply = await self._readline(timeout)
            if reply == "HANGUP":
                # Asynchronous notice that the channel hung up; it can arrive in place of
                # (before) the reply to the pending command. Nothing useful follows.
                self.hung_up = True
                raise AgiHangup("HANGUP")
            if reply.startswith("100"):
                continue  # "100 result=0 Trying...": the real reply follows
            if reply.startswith("520-"):
                # Multi-line usage error, ends with "520 End of proper usage."
                lines = [reply]
                while not lines[-1].startswith("520 "):
                    lines.append(await self._readline(timeout))
                raise AgiError(520, "\n".join(lines))
            break
        code = reply[:3]
        if code == "511":
            self.hung_up = True
            raise AgiHangup(reply)
        if code != "200":
            raise AgiError(int(code) if code.isdigit() else 0, reply)
        value = reply[11:]  # after "200 result="
        if reply.startswith("200 result=") and value.isalnum():
            return AgiResult(200, value, "", {}, reply)  # the usual bare "200 result=0"
        match = _RESULT_RE.match(reply)
        if match is None:  # unusual shape: keep the value, the rest as data
            result, _, rest = reply[len("200 result=") :].partition(" ")
            return AgiResult(200, result, rest.strip(), {}, reply)
        return AgiResult(
            code=200,
            result=match["result"],
            data=match["data"] or "",
            extra=dict(kv.split("=", 1) for kv in match["extra"].split()),
            line=reply,
        )

    async def set_variable(self, name: str, value: object) -> None:
        await self.command(f"SET VARIABLE {quote_arg(name)} {quote_arg(value)}")

    async def get_variable(self, name: str) -> str | None:
        """The channel variable's value, or None if it is not set."""
        res = await self.command(f"GET VARIABLE {quote_arg(name)}")
        return res.data if res.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote_arg(message)} {int(level)}")

    async def exec(self, application: str, *args: object) -> AgiResult:
        """Run a dialplan application, e.g. ``exec("Playback", "hello-world")``."""
        joined = ",".join(str(a) for a in args)
        return await self.command(f"EXEC {application} {quote_arg(joined)}")

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def hangup(self) -> None:
        with contextlib.suppress(AgiHangup):
            await self.command("HANGUP")
        self.hung_up = True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
            async with asyncio.timeout(1):
                await self.writer.wait_closed()


async def ping(agi: AgiSession) -> None:
    """Route ``ping``: proves the dialplan reaches us; sets CUBE_AGI=ok on the channel."""
    await agi.set_variable("CUBE_AGI", "ok")
