"""Structured logging: one line per event, ``key=value`` (default) or JSON.

Use :func:`get_logger` and log an *event name* plus fields::

    from asterisk_cube.logs import get_logger

    log = get_logger(__name__)
    log.info("stasis_start", channel=chan_id, args=["inbound", "3"])

gives::

    2026-11-05T10:00:00.123Z level=info logger=asterisk_cube.ari.supervisor \
event=stasis_start channel=1730800000.12 args=inbound,3

Records from other libraries (uvicorn, aiohttp, ...) come out in the same shape with
their message as ``event=``. A traceback is kept on the same line (newlines escaped)
so a log line is always one event. Every value goes through :func:`redact.redact`, so a
library's error that quotes a URL with ``api_key=user:password`` or ``user:pw@`` does not
put the password in the log.

:func:`configure` installs the handler on the root logger; ``serve`` calls it with the
level and format from ``--log-level``/``--log-format`` (or ``ASTERISK_CUBE_LOG_LEVEL`` /
``ASTERISK_CUBE_LOG_FORMAT``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

from .redact import redact

FIELDS_ATTR = "cube_fields"
FORMATS = ("kv", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Chatty third-party loggers, and the least severe level we let through from them.
_NOISY = {
    "httpx": logging.WARNING,  # one INFO line per REST request
    "httpcore": logging.WARNING,
    "aiohttp": logging.WARNING,
    "uvicorn": logging.WARNING,  # we log web_listening ourselves
    "uvicorn.access": logging.WARNING,
    "panoramisk": logging.WARNING,
}


def _format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ",".join(_format_value(v) for v in value)
    text = redact(str(value))
    if text == "" or any(c in text for c in ' "=\\\n\r\t') or not text.isprintable():
        escaped = (
            text.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\t", "\\t")
        )
        return f'"{escaped}"'
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return redact(str(value))


def _timestamp(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Event name and fields of a record, whether it came from a StructLogger or not."""
    fields = getattr(record, FIELDS_ATTR, None)
    if fields is None:
        # A plain logging call (ours or a library's): the message is the event.
        return {"event": record.getMessage()}
    return {"event": record.msg, **fields}


def _exception_fields(record: logging.LogRecord) -> dict[str, str]:
    if not record.exc_info or record.exc_info[0] is None:
        return {}
    etype, evalue, _tb = record.exc_info
    return {
        "exc": f"{etype.__name__}: {evalue}",
        "traceback": "".join(traceback.format_exception(*record.exc_info)).rstrip(),
    }


class KeyValueFormatter(logging.Formatter):
    """``<utc time> level=... logger=... event=... key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _timestamp(record),
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
        ]
        fields = _record_fields(record) | _exception_fields(record)
        parts.extend(f"{key}={_format_value(value)}" for key, value in fields.items())
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``event`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        for key, value in (_record_fields(record) | _exception_fields(record)).items():
            out[key if key not in ("ts", "level", "logger") else f"field_{key}"] = _jsonable(value)
        return json.dumps(out, ensure_ascii=False)


class StructLogger:
    """A thin wrapper over :class:`logging.Logger`: ``log.info("event_name", key=value)``."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def log(self, level: int, event: str, /, exc_info: Any = None, **fields: Any) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level, event, exc_info=exc_info, extra={FIELDS_ATTR: fields}, stacklevel=3
            )

    def debug(self, event: str, /, **fields: Any) -> None:
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, /, **fields: Any) -> None:
        self.log(logging.ERROR, event, **fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        """An ERROR line with the current exception (``exc=`` and ``traceback=``)."""
        self.log(logging.ERROR, event, exc_info=True, **fields)


def get_logger(name: str) -> StructLogger:
    return StructLogger(logging.getLogger(name))


_HANDLER_MARK = "_asterisk_cube_handler"


def parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (use one of {', '.join(LEVELS)})")
    return getattr(logging, name)


def configure(level: str | int = "INFO", fmt: str = "kv", stream: TextIO | None = None) -> None:
    """Send all logging to ``stream`` (stderr) as structured lines at ``level``.

    Idempotent: calling it again replaces our handler (not other handlers, e.g. pytest's).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (use kv or json)")
    numeric = parse_level(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, floor in _NOISY.items():
        logging.getLogger(name).setLevel(max(numeric, floor))
