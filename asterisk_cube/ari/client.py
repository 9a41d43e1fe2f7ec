"""A lean ARI client: one aiohttp session for REST and the event websocket (issue #19).

What the product needs of ARI and nothing more (docs/decisions.md, "ARI client"):

* events: every websocket frame is decoded once with ``json.loads`` into a plain dict and
  handed on as is (no event or model objects); ``async for event in client`` ends when the
  websocket closes, for whatever reason (the supervisor reconnects and resyncs);
* REST: ``await client.channels.answer(channelId=...)``, ``client.bridges.addChannel(...)``
  and the other operations in :data:`OPERATIONS` (the names and parameters of Asterisk's
  ARI documentation, which asyncari used too), built as ``method + path + query`` without a
  swagger layer; the reply's JSON (a dict or list) or None. A failed request raises
  :class:`AriHttpError` (``.status``, and ``.response.status_code`` like httpx's errors);
  a transport error on a stale keep-alive socket is retried once on the same pool;
* one connection pool (``aiohttp.TCPConnector``) for every request of a connection;
  credentials go in an ``Authorization`` header, never in a URL.
"""

from __future__ import annotations

import http
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

REST_TIMEOUT = 15.0  # seconds for one ARI REST request
POOL_SIZE = 20  # concurrent REST connections to Asterisk

# resource -> operation -> (HTTP method, path template); {names} are path parameters, every
# other keyword argument goes in the query string (``variables`` in the JSON body).
OPERATIONS: dict[str, dict[str, tuple[str, str]]] = {
    "channels": {
        "list": ("GET", "channels"),
        "get": ("GET", "channels/{channelId}"),
        "originate": ("POST", "channels"),
        "originateWithId": ("POST", "channels/{channelId}"),
        "create": ("POST", "channels/create"),
        "hangup": ("DELETE", "channels/{channelId}"),
        "answer": ("POST", "channels/{channelId}/answer"),
        "continueInDialplan": ("POST", "channels/{channelId}/continue"),
        "redirect": ("POST", "channels/{channelId}/redirect"),
        "ring": ("POST", "channels/{channelId}/ring"),
        "ringStop": ("DELETE", "channels/{channelId}/ring"),
        "mute": ("POST", "channels/{channelId}/mute"),
        "unmute": ("DELETE", "channels/{channelId}/mute"),
        "hold": ("POST", "channels/{channelId}/hold"),
        "unhold": ("DELETE", "channels/{channelId}/hold"),
        "startMoh": ("POST", "channels/{channelId}/moh"),
        "stopMoh": ("DELETE", "channels/{channelId}/moh"),
        "startSilence": ("POST", "channels/{channelId}/silence"),
        "stopSilence": ("DELETE", "channels/{channelId}/silence"),
        "play": ("POST", "channels/{channelId}/play"),
        "playWithId": ("POST", "channels/{channelId}/play/{playbackId}"),
        "record": ("POST", "channels/{channelId}/record"),
        "getChannelVar": ("GET", "channels/{channelId}/variable"),
        "setChannelVar": ("POST", "channels/{channelId}/variable"),
        "snoopChannel": ("POST", "channels/{channelId}/snoop"),
        "snoopChannelWithId": ("POST", "channels/{channelId}/snoop/{snoopId}"),
        "dial": ("POST", "channels/{channelId}/dial"),
        "sendDTMF": ("POST", "channels/{channelId}/dtmf"),
    },
    "bridges": {
        "list": ("GET", "bridges"),
        "create": ("POST", "bridges"),
        "get": ("GET", "bridges/{bridgeId}"),
        "createWithId": ("POST", "bridges/{bridgeId}"),
        "destroy": ("DELETE", "bridges/{bridgeId}"),
        "addChannel": ("POST", "bridges/{bridgeId}/addChannel"),
        "removeChannel": ("POST", "bridges/{bridgeId}/removeChannel"),
        "startMoh": ("POST", "bridges/{bridgeId}/moh"),
        "stopMoh": ("DELETE", "bridges/{bridgeId}/moh"),
        "play": ("POST", "bridges/{bridgeId}/play"),
        "playWithId": ("POST", "bridges/{bridgeId}/play/{playbackId}"),
        "record": ("POST", "bridges/{bridgeId}/record"),
    },
    "applications": {
        "list": ("GET", "applications"),
        "get": ("GET", "applications/{applicationName}"),
        "subscribe": ("POST", "applications/{applicationName}/subscription"),
        "unsubscribe": ("DELETE", "applications/{applicationName}/subscription"),
    },
    "asterisk": {
        "getInfo": ("GET", "asterisk/info"),
        "ping": ("GET", "asterisk/ping"),
        "getGlobalVar": ("GET", "asterisk/variable"),
        "setGlobalVar": ("POST", "asterisk/variable"),
    },
    "playbacks": {
        "get": ("GET", "playbacks/{playbackId}"),
        "stop": ("DELETE", "playbacks/{playbackId}"),
        "control": ("POST", "playbacks/{playbackId}/control"),
    },
    "recordings": {
        "getLive": ("GET", "recordings/live/{recordingName}"),
        "cancel": ("DELETE", "recordings/live/{recordingName}"),
        "stop": ("POST", "recordings/live/{recordingName}/stop"),
        "pause": ("POST", "recordings/live/{recordingName}/pause"),
        "unpause": ("DELETE", "recordings/live/{recordingName}/pause"),
        "listStored": ("GET", "recordings/stored"),
        "getStored": ("GET", "recordings/stored/{recordingName}"),
        "deleteStored": ("DELETE", "recordings/stored/{recordingName}"),
    },
    "endpoints": {
        "list": ("GET", "endpoints"),
        "get": ("GET", "endpoints/{tech}/{resource}"),
    },
    "events": {
        "userEvent": ("POST", "events/user/{eventName}"),
    },
}


class AriHttpError(Exception):
    """Asterisk answered a REST request with an HTTP error (``status``: 400, 404, 409...)."""

    class _Response:
        __slots__ = ("status_code",)

        def __init__(self, status_code: int) -> None:
            self.status_code = status_code

    def __init__(self, method: str, path: str, status: int, message: str = "") -> None:
        self.status = status
        self.response = self._Response(status)  # what http_status() in ari/ looks for
        self.data = {"message": message} if message else None
        text = f"{method} /ari/{path}: HTTP {status}"
        super().__init__(f"{text} {message}" if message else text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


class _Operation:
    __slots__ = ("client", "method", "names", "template")

    def __init__(self, client: AriClient, method: str, template: str) -> None:
        self.client = client
        self.method = method
        self.template = template
        self.names = tuple(part[1:-1] for part in template.split("/") if part.startswith("{"))

    def __call__(self, **params: Any) -> Awaitable[Any]:
        path = self.template
        for name in self.names:
            try:
                value = params.pop(name)
            except KeyError:
                raise TypeError(f"{self.template} needs {name}=") from None
            path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        body = None
        variables = params.pop("variables", None)
        if variables is not None:
            body = {"variables": variables}
        query = {k: _text(v) for k, v in params.items() if v is not None}
        return self.client.request(self.method, path, query, body)


class _Resource:
    def __init__(self, client: AriClient, name: str) -> None:
        self._name = name
        for op, (method, template) in OPERATIONS[name].items():
            setattr(self, op, _Operation(client, method, template))

    def __getattr__(self, op: str) -> Any:
        raise AttributeError(f"ARI client has no operation {self._name}.{op}")


class AriClient:
    """One ARI connection: ``async with AriClient(...) as client`` opens the REST pool and
    the event websocket for ``app``; ``async for event in client`` reads events (dicts)."""

    def __init__(self, base_url: str, username: str, password: str, app: str) -> None:
        self.base = base_url.rstrip("/") + "/ari/"
        self.app = app
        self._headers = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.decode: Callable[[str], dict[str, Any]] = json.loads
        self.channels = _Resource(self, "channels")
        self.bridges = _Resource(self, "bridges")
        self.applications = _Resource(self, "applications")
        self.asterisk = _Resource(self, "asterisk")
        self.playbacks = _Resource(self, "playbacks")
        self.recordings = _Resource(self, "recordings")
        self.endpoints = _Resource(self, "endpoints")
        self.events = _Resource(self, "events")

    # --- connection ---------------------------------------------------------------------

    async def __aenter__(self) -> AriClient:
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=REST_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=POOL_SIZE),
        )
        try:
            self._ws = await self._session.ws_connect(
                self.base + "events", params={"app": self.app}, heartbeat=None
            )
        except aiohttp.WSServerHandshakeError as exc:
            await self._session.close()
            phrase = http.HTTPStatus(exc.status).phrase if 100 <= exc.status < 600 else ""
            raise ConnectionError(
                f"ARI refused the event websocket: HTTP {exc.status} {phrase}".rstrip()
            ) from None
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if self._ws is not None:
                await self._ws.close()
        finally:
            if self._session is not None:
                await self._session.close()

    @property
    def websockets(self) -> set[Any]:
        """The open event websocket (empty once it closed): the supervisor's watchdog."""
        return {self._ws} if self._ws is not None and not self._ws.closed else set()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        ws = self._ws
        if ws is None:
            return
        async for msg in ws:  # ends on close, error or a lost connection
            if msg.type is aiohttp.WSMsgType.TEXT:
                yield self.decode(msg.data)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                return

    # --- REST ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """``method /ari/<path>``; the reply's JSON, or None (204, empty)."""
        session = self._session
        if session is None or session.closed:
            raise ConnectionError("ARI is not connected")
        url = self.base + path
        for attempt in (1, 2):
            try:
                async with session.request(method, url, params=params, json=body) as r:
                    status = r.status
                    raw = await r.read()
                break
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt == 2:  # a stale keep-alive socket fails once, not twice
                    raise
        if status >= 400:
            message = ""
            try:
                message = str(json.loads(raw).get("message", ""))
            except (ValueError, AttributeError):
                message = raw[:200].decode(errors="replace")
            raise AriHttpError(method, path, status, message)
        return json.loads(raw) if raw else None
