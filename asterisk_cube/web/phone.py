"""The phone in the browser: which phone an agent's calls ring, and the SIP account the
desk registers (issue #16; docs/webrtc.md).

    GET  /api/phone     {phone: "desk" | "browser", available, desk_endpoint, sip: {...}}
    POST /api/phone     {phone: "desk" | "browser"} -> the same

``sip`` (only with ``[webrtc] ws_url`` set) is what the desk's JsSIP user agent needs:
the WebSocket URL, the SIP URI and the password of ``cube-webrtc-<username>``. It is
given to the signed-in agent only, for their own account.

A choice is written to ``agents.phone``; that bumps the configuration version, so every
``serve`` dials the chosen phone from its next check on (this node at once: the handler
reloads the distributor's configuration before answering).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..core import phones
from ..db import models as m
from ..logs import get_logger
from .i18n import gettext as _
from .inputs import BadInput, json_body, str_field

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from .auth import User
    from .desk_host import DeskHost

log = get_logger(__name__)


class BrowserPhone:
    def __init__(
        self,
        desktop: DeskHost,
        sessions: sessionmaker[Session],
        ws_url: str = "",
        secret_key: str = "",
    ) -> None:
        self.desktop = desktop
        self.sessions = sessions
        self.ws_url = ws_url
        self.secret_key = secret_key

    @property
    def available(self) -> bool:
        return bool(self.ws_url and self.secret_key)

    def sip_account(self, username: str) -> dict[str, str]:
        name = phones.webrtc_endpoint(username)
        host = urlsplit(self.ws_url).hostname or "localhost"
        return {
            "ws_url": self.ws_url,
            "uri": f"sip:{name}@{host}",
            "user": name,
            "password": phones.sip_password(self.secret_key, username),
        }

    def _read(self, agent_id: int) -> tuple[str, str | None]:
        with self.sessions() as s:
            agent = s.get(m.Agent, agent_id)
            if agent is None:
                return phones.DESK, None
            return agent.phone or phones.DESK, agent.endpoint

    def _write(self, agent_id: int, phone: str) -> None:
        with self.sessions() as s, s.begin():
            agent = s.get(m.Agent, agent_id)
            if agent is not None and agent.phone != phone:
                agent.phone = phone

    async def state(self, user: User) -> dict[str, Any]:
        phone, desk_endpoint = await run_in_threadpool(self._read, user.agent_id)
        out: dict[str, Any] = {
            "phone": phone if self.available else phones.DESK,
            "available": self.available,
            "desk_endpoint": desk_endpoint or "",
        }
        if self.available:
            out["sip"] = self.sip_account(user.username)
        return out

    async def get(self, request: Request, user: User) -> Response:
        return JSONResponse(await self.state(user))

    async def choose(self, request: Request, user: User) -> Response:
        body = await json_body(request)
        phone = str_field(body, "phone", required=True, max_length=16)
        if phone not in phones.PHONES:
            raise BadInput("phone", _("must be desk or browser"))
        if phone == phones.BROWSER and not self.available:
            raise BadInput("phone", _("the phone in the browser is not set up on this server"))
        await run_in_threadpool(self._write, user.agent_id, phone)
        reload = getattr(self.desktop.desk, "reload_config", None)
        if reload is not None:  # in effect on this node before we answer
            await reload()
        log.info("desk_phone_chosen", agent=user.agent_id, phone=phone)
        return JSONResponse({"ok": True, **await self.state(user)})

    def routes(self) -> list[BaseRoute]:
        api = self.desktop.api
        return [
            Route("/api/phone", api(self.get), methods=["GET"]),
            Route("/api/phone", api(self.choose), methods=["POST"]),
        ]
