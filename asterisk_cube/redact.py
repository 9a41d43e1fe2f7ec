"""Credentials out of error texts: the one function used wherever an error is kept or logged.

Errors from the libraries we use carry credentials in predictable places: httpx puts the
request URL in its message (an ARI client may authenticate with ``?api_key=user:password``),
database and SMTP URLs carry ``user:password@``, an AMI action's repr has ``Secret: ...``,
an HTTP dump has ``Authorization: Basic ...``. :func:`redact` replaces the secret part of
each with ``***`` and leaves the rest (host, path, user name, the error itself) readable::

    >>> redact("401 for url 'http://h:8088/ari/x?api_key=cube%3Apw&app=a'")
    "401 for url 'http://h:8088/ari/x?api_key=***&app=a'"
    >>> redact("postgresql+psycopg://cube:pw@db/cube")
    'postgresql+psycopg://cube:***@db/cube'

It is pattern based, not a list of the configured secrets: the default ARI password is the
same word as the app and user name, which must stay readable in the log. The log
formatters (``logs.py``) run every line through it; ``last_error`` of the ARI supervisor
and the AMI monitor, the note mailer's ``mail_error`` and the CLI's database errors are
redacted when they are kept.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"<>]*):[^\s/'\"<>]*@")
# ?api_key=...&password=... (query strings, form bodies, websocket URLs)
_CREDENTIAL_PARAM = re.compile(
    r"(?P<head>(?:^|[?&;\s])(?:api_key|apikey|password|passwd|pwd|secret|secret_key|token|"
    r"access_token)=)[^&;\s'\"<>#]*",
    re.IGNORECASE,
)
# Secret: x / "password": "x" / secret_key='x' (AMI actions, dict reprs, config dumps)
_CREDENTIAL_FIELD = re.compile(
    r"(?P<head>\b(?:secret|password|passwd|secret_key|api_key)['\"]?\s*[:=]\s*)"
    r"(?P<quote>['\"]?)(?!\*\*\*)[^\s'\",}&]+",
    re.IGNORECASE,
)
# Authorization: Basic xxx / Bearer xxx
_AUTH_HEADER = re.compile(r"(?P<head>\b(?:Basic|Bearer|Digest)\s+)[A-Za-z0-9+/=._\-~]{6,}")


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``***`` (see the module docstring)."""
    if not text or (":" not in text and "=" not in text and " " not in text):
        return text  # the common case in a log line: an id, a number, a word
    text = _URL_USERINFO.sub(rf"\g<head>:{MASK}@", text)
    text = _CREDENTIAL_PARAM.sub(rf"\g<head>{MASK}", text)
    text = _CREDENTIAL_FIELD.sub(rf"\g<head>\g<quote>{MASK}", text)
    return _AUTH_HEADER.sub(rf"\g<head>{MASK}", text)


def redact_url(url: str) -> str:
    """A URL (database, ARI) safe to show: the password replaced by ``***``."""
    return redact(url)
