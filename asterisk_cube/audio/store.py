"""Asterisk's stored recordings over ARI's HTTP API, and the retention job.

``GET /ari/recordings/stored/{name}/file`` streams the file (Asterisk 14+), ``DELETE
/ari/recordings/stored/{name}`` removes it. ``serve`` reads the files this way, so it never
needs access to Asterisk's spool directory (which may be on another host or in a chroot).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import httpx

from asterisk_cube.ari.supervisor import normalize_base_url
from asterisk_cube.config import AriSettings
from asterisk_cube.db.session import transaction
from asterisk_cube.logs import get_logger
from asterisk_cube.services import recordings as svc

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = get_logger(__name__)

CLEANUP_INTERVAL = 3600.0  # seconds between two retention runs
CONTENT_TYPES = {"wav": "audio/wav", "gsm": "audio/x-gsm", "ulaw": "audio/basic"}


class StoredRecordings:
    """Asterisk's stored recordings (one ``httpx.AsyncClient`` per call: rare requests)."""

    def __init__(self, ari: AriSettings, timeout: float = 15.0) -> None:
        self.base = normalize_base_url(ari.url) + "ari/recordings/stored/"
        self.auth = (ari.username, ari.password)
        self.timeout = timeout

    def _url(self, name: str, suffix: str = "") -> str:
        return self.base + urllib.parse.quote(name, safe="") + suffix

    async def stream(self, name: str) -> tuple[int, AsyncIterator[bytes] | None, httpx.AsyncClient]:
        """(status, chunks, client) of the file; close the client when done."""
        client = httpx.AsyncClient(auth=self.auth, timeout=self.timeout)
        request = client.build_request("GET", self._url(name, "/file"))
        response = await client.send(request, stream=True)
        if response.status_code != 200:
            await response.aclose()
            return response.status_code, None, client
        return 200, response.aiter_bytes(), client

    async def delete(self, name: str) -> bool:
        """Remove the stored recording; True if it is gone (also if it was gone already)."""
        async with httpx.AsyncClient(auth=self.auth, timeout=self.timeout) as client:
            response = await client.delete(self._url(name))
        if response.status_code in (204, 404):
            return True
        log.warning("recording_delete_failed", name=name, status=response.status_code)
        return False

    async def exists(self, name: str) -> bool:
        async with httpx.AsyncClient(auth=self.auth, timeout=self.timeout) as client:
            response = await client.get(self._url(name))
        return response.status_code == 200


async def purge_expired(
    sessions: sessionmaker[Session],
    store: StoredRecordings,
    now: dt.datetime | None = None,
    on_deleted: Callable[[int], None] | None = None,
) -> int:
    """Delete the files of recordings past their retention and mark their rows deleted.
    Returns how many went. A file Asterisk cannot delete now is tried again next run."""
    now = now or dt.datetime.now(dt.UTC)

    def due() -> list[tuple[int, str]]:
        with transaction(sessions) as s:
            return [(r.id, r.name) for r in svc.expired(s, now)]

    gone = 0
    for recording_id, name in await asyncio.to_thread(due):
        try:
            ok = await store.delete(name)
        except httpx.HTTPError as exc:
            log.warning("recording_delete_failed", name=name, error=repr(exc))
            continue
        if not ok:
            continue

        def mark(rid: int = recording_id) -> None:
            with transaction(sessions) as s:
                svc.mark_deleted(s, rid, now)

        await asyncio.to_thread(mark)
        gone += 1
        log.info("recording_expired", name=name)
    if on_deleted is not None and gone:
        on_deleted(gone)
    return gone


async def retention_job(
    sessions: sessionmaker[Session],
    store: StoredRecordings,
    interval: float = CLEANUP_INTERVAL,
    on_deleted: Callable[[int], None] | None = None,
) -> None:
    """A ``serve`` component: purge expired recordings at start and then every ``interval``."""
    while True:
        try:
            await purge_expired(sessions, store, on_deleted=on_deleted)
        except Exception as exc:  # Asterisk or the database away: next run
            log.warning("recording_retention_failed", error=repr(exc))
        await asyncio.sleep(interval)
