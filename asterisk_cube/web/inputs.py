"""Strict reading of JSON request bodies and path ids for the desktop API.

Anything malformed raises :class:`BadInput` naming the field; the handler turns it into
a 400 before anything is changed.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..core.text import control_problem
from .i18n import gettext as _

MAX_ID = 2**53  # what a browser's JSON number keeps exactly
MAX_LIST = 500


class BadInput(Exception):
    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; an empty body counts as ``{}``.

    Another content type is 415 before the body is read (a form body may already have
    been consumed for its CSRF field); a body over the mount's limit (``MAX_BODY``, also
    when sent chunked) is 413."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype and ctype != "application/json":
        raise BadInput("body", _("send the request as application/json"), status=415)
    try:
        raw = await request.body()
    except HTTPException as exc:  # starlette's body limit (Mount max_body_size)
        if exc.status_code == 413:
            raise BadInput("body", _("is too large"), status=413) from None
        raise
    if not raw.strip():
        return {}
    if ctype != "application/json":
        raise BadInput("body", _("send the request as application/json"), status=415)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("body", _("not valid JSON")) from None
    if not isinstance(data, dict):
        raise BadInput("body", _("must be a JSON object"))
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_field(body: dict[str, Any], name: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int:
    if name not in body:
        raise BadInput(name, _("is required"))
    value = body[name]
    if not _is_int(value):
        raise BadInput(name, _("must be a whole number"))
    if not minimum <= value <= maximum:
        raise BadInput(
            name,
            _("must be between %(low)d and %(high)d") % {"low": minimum, "high": maximum},
        )
    return value


def id_list(body: dict[str, Any], name: str, *, allow_empty: bool = True) -> list[int]:
    if name not in body:
        raise BadInput(name, _("is required"))
    value = body[name]
    if not isinstance(value, list) or not all(_is_int(v) and 0 < v <= MAX_ID for v in value):
        raise BadInput(name, _("must be a list of ids (whole numbers)"))
    if len(value) > MAX_LIST:
        raise BadInput(name, _("too many items"))
    if not value and not allow_empty:
        raise BadInput(name, _("choose at least one"))
    return list(dict.fromkeys(value))  # drop duplicates, keep order


def str_field(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    max_length: int = 200,
    multiline: bool = False,
) -> str:
    """A text field, stripped. No control characters (line breaks only in ``multiline``
    fields: a note's message, a comment), so nothing downstream (an e-mail Subject, a log
    line, a CSV cell) can be broken by it."""
    if name not in body or body[name] is None:
        if required:
            raise BadInput(name, _("is required"))
        return ""
    value = body[name]
    if not isinstance(value, str):
        raise BadInput(name, _("must be text"))
    value = value.strip()
    if required and not value:
        raise BadInput(name, _("is required"))
    if len(value) > max_length:
        raise BadInput(name, _("is longer than %(max)d characters") % {"max": max_length})
    if control_problem(value, multiline=multiline):
        raise BadInput(name, _("contains control characters"))
    return value


def path_id(request: Request, name: str) -> int:
    raw = str(request.path_params.get(name, ""))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 16 and 0 < int(raw) <= MAX_ID):
        raise BadInput(name, _("must be a positive whole number"))
    return int(raw)
