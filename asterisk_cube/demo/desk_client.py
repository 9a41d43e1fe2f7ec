"""The desk's JSON API and event stream as a simulated agent uses them (the demo's traffic).

The same endpoints, session cookie and CSRF header as the desk page: a simulated agent is
an agent to ``serve``. (``tests/agent_client.py`` is the tests' fuller client; the package
must not import from ``tests/``, so this is the few calls the simulator needs.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

View = dict[str, Any]


class DeskError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = body.get("error", "") if isinstance(body, dict) else ""
        super().__init__(f"{status} {self.reason}: {body}")


class DeskClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers={"Accept": "application/json"}
        )
        self.csrf: str | None = None

    async def __aenter__(self) -> DeskClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        resp = await self.http.post(path, json=body or {}, headers=headers)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            raise DeskError(resp.status_code, data)
        return data

    async def login(self, username: str, password: str) -> dict[str, Any]:
        data = await self._post("/api/login", {"username": username, "password": password})
        self.csrf = data["csrf_token"]
        return data["agent"]

    async def act(self, path: str, body: dict[str, Any] | None = None) -> View:
        """A desk action (``/api/ready``, ``/api/offers/7/accept``...): the fresh view."""
        return (await self._post(path, body))["view"]

    async def view(self) -> View:
        resp = await self.http.get("/api/me")
        if resp.status_code >= 400:
            raise DeskError(resp.status_code, resp.json())
        return resp.json()

    async def logout(self) -> None:
        await self._post("/api/logout")

    async def views(self) -> AsyncIterator[View]:
        """Every view the desk's event stream pushes (the full view first)."""
        async with self.http.stream(
            "GET",
            "/desk/events",
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=None),
        ) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise DeskError(resp.status_code, resp.json())
            event, data = "message", list[str]()
            async for line in resp.aiter_lines():
                if line == "":
                    if event == "view" and data:
                        yield json.loads("\n".join(data))
                    event, data = "message", list[str]()
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
