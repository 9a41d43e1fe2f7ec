"""The "test agent client": the agent desktop's own JSON API and SSE push, from Python.

Integration and browser tests use it to act as an agent exactly as the desktop page
does (same endpoints, same session cookie and CSRF header)::

    async with AgentClient("http://127.0.0.1:25080") as agent:
        await agent.login("kari", "kari-secret-1")
        await agent.start()                      # start work (paused "login")
        await agent.choose_lines([1, 3])
        await agent.ready()
        async with agent.events() as events:     # SSE: full view first, then changes
            view = await events.wait_for(lambda v: v["offer"] is not None, timeout=10)
        await agent.accept(view["offer"]["call_id"])

Every action returns the fresh view (a dict shaped like ``AgentView.to_dict()``);
a refusal raises :class:`ApiError` with ``status``, ``reason`` (``error`` key),
``message`` and ``field``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

View = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None) -> None:
        body = body or {}
        self.status = status
        self.body = body
        self.reason = body.get("error", "")
        self.message = body.get("message", "")
        self.field = body.get("field")
        super().__init__(f"{status} {self.reason}: {self.message} {body.get('detail', '')}")


async def next_event(lines: AsyncIterator[str], stream: str) -> tuple[str, str]:
    """The next server-sent event that carries data: (event name, data). Heartbeat comments
    and data-less events are skipped; the end of the stream raises EOFError."""
    event, data = "message", []
    async for line in lines:
        if line == "":
            if data:
                return event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue  # heartbeat comment
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    raise EOFError(f"{stream} ended")


class ViewStream:
    """Views from ``GET /desk/events``; the first is the full current view."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.last: View | None = None

    async def next(self, timeout: float = 10.0) -> View:
        """The next ``view`` message, or the last view with a ``count`` message's new
        queue count applied (heartbeats and other events are skipped)."""
        return await asyncio.wait_for(self._next_view(), timeout)

    async def _next_view(self) -> View:
        while True:
            event, data = await next_event(self._lines, "event stream")
            if event == "view":
                self.last = json.loads(data)
                return self.last
            if event == "count" and self.last is not None:
                # only one line's queue changed (issue #19): as the desk page, update the
                # count in the last view and hand that on
                count = json.loads(data)
                lines = [
                    {**ln, "waiting": count["waiting"], "longest_wait_s": count["longest_wait_s"]}
                    if ln["line_id"] == count["line_id"]
                    else ln
                    for ln in self.last["lines"]
                ]
                self.last = {**self.last, "lines": lines}
                return self.last
            if event == "refused":
                raise ApiError(409, json.loads(data))

    async def raw_line(self, timeout: float = 10.0) -> str:
        """The next raw line of the stream (e.g. ``": ping"`` heartbeats)."""
        return await asyncio.wait_for(anext(self._lines), timeout)

    async def wait_for(self, predicate: Callable[[View], Any], timeout: float = 10.0) -> View:
        """Read views until ``predicate(view)`` is true (the last one read counts too)."""

        async def loop() -> View:
            if self.last is not None and predicate(self.last):
                return self.last
            while True:
                view = await self._next_view()
                if predicate(view):
                    return view

        return await asyncio.wait_for(loop(), timeout)

    def __aiter__(self) -> AsyncIterator[View]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[View]:
        while True:
            try:
                yield await self._next_view()
            except EOFError:
                return


class AgentClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0, language: str | None = None):
        headers = {"Accept": "application/json"}
        if language:
            headers["Accept-Language"] = language
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)
        self.csrf: str | None = None
        self.agent: dict[str, Any] | None = None

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- plumbing ---------------------------------------------------------------------

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        """A raw request with the CSRF header (for tests of bad input)."""
        headers = dict(kw.pop("headers", {}))
        if method != "GET" and self.csrf and "X-CSRF-Token" not in headers:
            headers["X-CSRF-Token"] = self.csrf
        if body is not None:
            kw["json"] = body
        return await self.http.request(method, path, headers=headers, **kw)

    async def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = await self.request(method, path, body if body is not None else {})
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, data)
        return data

    async def _get(self, path: str, **kw: Any) -> Any:
        """GET ``path`` (no body, unlike ``_json``) and return its JSON."""
        resp = await self.request("GET", path, **kw)
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, resp.json())
        return resp.json()

    async def _act(self, path: str, body: dict[str, Any] | None = None) -> View:
        return (await self._json("POST", path, body))["view"]

    # --- session ------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> dict[str, Any]:
        data = await self._json("POST", "/api/login", {"username": username, "password": password})
        self.csrf = data["csrf_token"]
        self.agent = data["agent"]
        return data["agent"]

    async def logout(self) -> None:
        await self._json("POST", "/api/logout")
        self.csrf = None

    async def set_language(self, language: str) -> str:
        return (await self._json("POST", "/api/language", {"language": language}))["language"]

    async def view(self) -> View:
        return await self._get("/api/me")

    # --- work -----------------------------------------------------------------------------

    async def start(self) -> View:
        return await self._act("/api/start")

    async def end(self) -> View:
        return await self._act("/api/end")

    async def choose_lines(self, line_ids: list[int]) -> View:
        return await self._act("/api/lines", {"line_ids": list(line_ids)})

    async def ready(self) -> View:
        return await self._act("/api/ready")

    async def pause(self, reason: str) -> View:
        return await self._act("/api/pause", {"reason": reason})

    async def cancel_pause(self) -> View:
        return await self._act("/api/pause/cancel")

    async def accept(self, call_id: int) -> View:
        return await self._act(f"/api/offers/{call_id}/accept")

    async def decline(self, call_id: int) -> View:
        return await self._act(f"/api/offers/{call_id}/decline")

    async def hangup(self, call_id: int) -> View:
        return await self._act(f"/api/calls/{call_id}/hangup")

    async def register_enquiry(self, call_id: int, topic_ids: list[int], comment: str = "") -> View:
        return await self._act(
            f"/api/calls/{call_id}/enquiry", {"topic_ids": list(topic_ids), "comment": comment}
        )

    async def close_call(self, call_id: int) -> View:
        return await self._act(f"/api/calls/{call_id}/close")

    async def search_contacts(self, query: str) -> list[dict[str, Any]]:
        return (await self._get("/api/contacts", params={"q": query}))["contacts"]

    async def attach_contact(self, call_id: int, contact_id: int) -> View:
        return await self._act(f"/api/calls/{call_id}/contact", {"contact_id": contact_id})

    async def create_contact(
        self, call_id: int, *, name: str = "", phone: str = "", company: str = "", email: str = ""
    ) -> View:
        return await self._act(
            f"/api/calls/{call_id}/contact/new",
            {"name": name, "phone": phone, "company": company, "email": email},
        )

    async def callback_missed(self, missed_id: int) -> View:
        return await self._act(f"/api/missed/{missed_id}/callback")

    async def mark_missed_processed(self, missed_id: int) -> View:
        return await self._act(f"/api/missed/{missed_id}/processed")

    async def finish_wrap_up(self) -> View:
        return await self._act("/api/wrapup/finish")

    async def extend_wrap_up(self, seconds: int) -> View:
        return await self._act("/api/wrapup/extend", {"seconds": seconds})

    # --- answering service (F-S1..F-S9) ------------------------------------------------------

    async def script(self, call_id: int) -> dict[str, Any]:
        """The client's script for the agent's current answering-service call."""
        return (await self._get(f"/api/calls/{call_id}/script"))["script"]

    async def forward(self, call_id: int, employee_id: int | None = None) -> View:
        """Announce the call to the employee's (None: the client's) targets, in turn."""
        return await self._act(f"/api/calls/{call_id}/forward", {"employee_id": employee_id})

    async def forward_connect(self, call_id: int) -> View:
        return await self._act(f"/api/calls/{call_id}/forward/connect")

    async def forward_cancel(self, call_id: int) -> View:
        return await self._act(f"/api/calls/{call_id}/forward/cancel")

    async def take_note(
        self,
        call_id: int,
        message: str,
        *,
        caller_name: str = "",
        callback_number: str = "",
        employee_id: int | None = None,
    ) -> View:
        return await self._act(
            f"/api/calls/{call_id}/note",
            {
                "message": message,
                "caller_name": caller_name,
                "callback_number": callback_number,
                "employee_id": employee_id,
            },
        )

    # --- push -------------------------------------------------------------------------------

    @asynccontextmanager
    async def event_stream(self, path: str) -> AsyncIterator[httpx.Response]:
        """The open SSE response of ``path`` (no read timeout); a refusal raises ApiError."""
        async with self.http.stream(
            "GET",
            path,
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=None),
        ) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise ApiError(resp.status_code, resp.json())
            yield resp

    @asynccontextmanager
    async def events(self) -> AsyncIterator[ViewStream]:
        """The SSE stream of views (``async with agent.events() as stream``)."""
        async with self.event_stream("/desk/events") as resp:
            yield ViewStream(resp)
