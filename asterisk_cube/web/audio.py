"""Supervisor audio and recordings on the web (issue #17, F-M3, F-M4).

Routes (every POST needs the session's CSRF token in ``X-CSRF-Token``)::

    POST /api/panel/calls/{call_id}/listen      supervisors: ring my phone, hear the call
    POST /api/panel/calls/{call_id}/whisper     ... and speak to the agent only
    POST /api/panel/calls/{call_id}/barge       ... and join the call (all hear all)
    POST /api/panel/listen/stop                 end my session (hangs up my phone's leg)
    GET  /api/panel/listen                      my session, or {"session": null}
    POST /api/panel/calls/{call_id}/record      supervisors: start recording the call
    POST /api/desk/record                       agents: start recording my connected call
    GET  /api/recordings?call_id=N              supervisors: the call's recordings
    GET  /recordings/{id}/file[?download=1]     supervisors: play (or download) one

Agents get 403 for every supervisor route; every action, playback and download is
written to ``audit_log`` (``listen_start``/``listen_end`` with the mode, ``recording_start``,
``recording_play``/``recording_download``). The supervisor's phone is the account's
endpoint (``agent set USER --endpoint PJSIP/...``: a desk phone or the browser phone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..audio.listen import Listening, ListenRefused, ListenSession
from ..audio.recorder import Recorder, RecordingRefused
from ..audio.store import CONTENT_TYPES, StoredRecordings
from ..db import models as m
from ..db.session import transaction
from ..logs import get_logger
from ..services import recordings as rec_svc
from ..services import supervision as svc
from . import i18n
from .auth import STATUS_FOR_REASON, User, refusal, request_language, require_role
from .i18n import gettext as _
from .inputs import BadInput, json_body, path_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = get_logger(__name__)


class AudioWeb:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        acd: Any,
        listening: Listening | None,
        recorder: Recorder | None,
        store: StoredRecordings | None,
    ) -> None:
        self.sessions = sessions
        self.acd = acd
        self.listening = listening
        self.recorder = recorder
        self.store = store

    # ----------------------------------------------------------------- plumbing

    def api(
        self, handler: Callable[[Request, User], Awaitable[Response]], role: str = "supervisor"
    ) -> Callable[[Request], Awaitable[Response]]:
        @require_role(role)
        async def endpoint(request: Request, user: User) -> Response:
            with i18n.use_language(request_language(request)):
                try:
                    return await handler(request, user)
                except BadInput as exc:
                    text = f"{exc.field}: {exc.message}"
                    return refusal(request, "invalid", exc.status, detail=text, field=exc.field)
                except (ListenRefused, RecordingRefused) as exc:
                    status = STATUS_FOR_REASON.get(exc.reason, 409)
                    return refusal(
                        request,
                        exc.reason if exc.reason in STATUS_FOR_REASON else "illegal_state",
                        status,
                        detail=exc.message,
                        message=_(refusal_text(exc.reason)),
                    )
                except Exception:
                    log.exception("audio_api_failed", path=request.url.path, user=user.username)
                    return refusal(request, "internal", 500)

        endpoint.__name__ = handler.__name__
        return endpoint

    def _audit(self, user: User | None, action: str, target: str, **details: Any) -> None:
        with transaction(self.sessions) as s:
            if user is None:
                svc.audit(s, "system", None, action, target, **details)
            else:
                svc.audit(s, user.username, user.agent_id, action, target, **details)

    def audit_end(self, session: ListenSession) -> None:
        """``Listening.on_end``: the session's end, audited (from a worker thread)."""
        import asyncio

        def write() -> None:
            with transaction(self.sessions) as s:
                svc.audit(
                    s,
                    session.supervisor,
                    session.supervisor_id,
                    "listen_end",
                    f"call {session.call_id}",
                    call_id=session.call_id,
                    mode=session.mode,
                    reason=session.end_reason,
                )

        asyncio.get_running_loop().run_in_executor(None, write)

    def _endpoint(self, user: User) -> str | None:
        with self.sessions() as s:
            agent = s.get(m.Agent, user.agent_id)
            return agent.endpoint if agent is not None else None

    # ------------------------------------------------------------------ listen

    def _mode(self, mode: str) -> Callable[[Request, User], Awaitable[Response]]:
        async def start(request: Request, user: User) -> Response:
            call_id = path_id(request, "call_id")
            await json_body(request)
            if self.listening is None:
                raise ListenRefused("illegal_state", "ARI is not connected")
            endpoint = await run_in_threadpool(self._endpoint, user)
            if not endpoint:
                raise ListenRefused("no_phone", "your account has no phone (endpoint)")
            session = await self.listening.start(
                call_id,
                mode,
                supervisor=user.username,
                supervisor_id=user.agent_id,
                endpoint=endpoint,
            )
            await run_in_threadpool(
                self._audit,
                user,
                "listen_start",
                f"call {call_id}",
                call_id=call_id,
                mode=mode,
                endpoint=endpoint,
                session=session.id,
            )
            return JSONResponse({"ok": True, **session.view()})

        start.__name__ = f"call_{mode}"
        return start

    async def stop(self, request: Request, user: User) -> Response:
        await json_body(request)
        listening = self.listening
        session = listening.session_of(user.username) if listening else None
        if listening is None or session is None:
            raise ListenRefused("illegal_state", "you are not listening to a call")
        await listening.stop(session, "stopped")
        return JSONResponse({"ok": True, "session": session.id})

    async def current(self, request: Request, user: User) -> Response:
        session = self.listening.session_of(user.username) if self.listening else None
        return JSONResponse({"session": session.view() if session else None})

    # --------------------------------------------------------------- recording

    async def record_call(self, request: Request, user: User) -> Response:
        call_id = path_id(request, "call_id")
        await json_body(request)
        return await self._record(user, call_id)

    async def record_mine(self, request: Request, user: User) -> Response:
        await json_body(request)
        call_id = None
        for row in self.acd.panel_snapshot().agents:
            if row.agent_id == user.agent_id:
                call_id = row.call_id
        if call_id is None:
            raise RecordingRefused("illegal_state", "you are not on a call")
        return await self._record(user, call_id)

    async def _record(self, user: User, call_id: int) -> Response:
        if self.recorder is None:
            raise RecordingRefused("illegal_state", "recording is not available")
        name = await self.recorder.start(call_id, by=user.username)
        await run_in_threadpool(
            self._audit, user, "recording_start", f"call {call_id}", call_id=call_id, name=name
        )
        return JSONResponse({"ok": True, "call_id": call_id, "name": name})

    async def list_recordings(self, request: Request, user: User) -> Response:
        raw = request.query_params.get("call_id", "")
        if not raw.isdigit():
            raise BadInput("call_id", _("must be a call number"))

        def read() -> list[dict[str, Any]]:
            with self.sessions() as s:
                return [recording_json(r) for r in rec_svc.of_call(s, int(raw))]

        return JSONResponse({"recordings": await run_in_threadpool(read)})

    async def file(self, request: Request, user: User) -> Response:
        recording_id = path_id(request, "recording_id")
        download = request.query_params.get("download") in ("1", "true", "yes")

        def read() -> tuple[str, str, int, str] | None:
            with self.sessions() as s:
                row = s.get(m.Recording, recording_id)
                if row is None:
                    return None
                return row.name, row.format, row.call_id, row.state

        found = await run_in_threadpool(read)
        if found is None or found[3] not in ("done", "recording") or self.store is None:
            raise RecordingRefused("not_found", f"no recording {recording_id}")
        name, fmt, call_id, _state = found
        status, chunks, client = await self.store.stream(name)
        if chunks is None:
            await client.aclose()
            raise RecordingRefused("not_found", f"Asterisk has no file for {name} ({status})")
        await run_in_threadpool(
            self._audit,
            user,
            "recording_download" if download else "recording_play",
            f"call {call_id}",
            call_id=call_id,
            recording_id=recording_id,
            name=name,
        )
        disposition = "attachment" if download else "inline"
        return StreamingResponse(
            chunks,
            media_type=CONTENT_TYPES.get(fmt, "application/octet-stream"),
            headers={
                "Content-Disposition": f'{disposition}; filename="{name}.{fmt}"',
                "Cache-Control": "no-store",
            },
            background=BackgroundTask(client.aclose),
        )

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[BaseRoute]:
        post = ["POST"]
        a = self.api
        routes: list[BaseRoute] = [
            Route(f"/api/panel/calls/{{call_id}}/{mode}", a(self._mode(mode)), methods=post)
            for mode in ("listen", "whisper", "barge")
        ]
        return [
            *routes,
            Route("/api/panel/listen/stop", a(self.stop), methods=post),
            Route("/api/panel/listen", a(self.current), methods=["GET"]),
            Route("/api/panel/calls/{call_id}/record", a(self.record_call), methods=post),
            Route("/api/desk/record", a(self.record_mine, role="agent"), methods=post),
            Route("/api/recordings", a(self.list_recordings), methods=["GET"]),
            Route("/recordings/{recording_id}/file", a(self.file), methods=["GET"]),
        ]


def recording_json(row: m.Recording) -> dict[str, Any]:
    return {
        "id": row.id,
        "call_id": row.call_id,
        "name": row.name,
        "state": row.state,
        "trigger": row.trigger,
        "started_by": row.started_by,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "duration_seconds": row.duration_seconds,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "error": row.error,
        "url": f"/recordings/{row.id}/file" if row.state == "done" else None,
    }


def refusal_text(reason: str) -> str:
    return {
        "no_phone": REFUSE_NO_PHONE,
        "failed": REFUSE_FAILED,
        "record_failed": REFUSE_RECORD_FAILED,
        "not_permitted": REFUSE_OFF,
        "not_found": REFUSE_NOT_FOUND,
    }.get(reason, REFUSE_STATE)


REFUSE_NO_PHONE = i18n.N_("Your account has no phone to listen on. Ask an admin to set one.")
REFUSE_FAILED = i18n.N_("Your phone could not be connected to the call.")
REFUSE_RECORD_FAILED = i18n.N_("The recording could not be started. It has been logged.")
REFUSE_OFF = i18n.N_("Recording is off for this line or campaign.")
REFUSE_NOT_FOUND = i18n.N_("That recording does not exist or was deleted.")
REFUSE_STATE = i18n.N_("That call is not connected now.")
