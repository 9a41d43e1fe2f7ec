"""What the web app's HTML pages share (desk, panel, reports): the templates and static
files, the security headers, and the signed-in supervisor a supervisors' page needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import i18n
from .auth import (
    User,
    current_user,
    request_language,
)

if TYPE_CHECKING:
    pass


HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


# {connect}: the desk page adds Asterisk's WebSocket for the browser phone (web/phone.py)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{connect}; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP.format(connect=""),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


async def supervisor_page_user(
    request: Request, templates: jinja2.Environment
) -> tuple[User | None, str, Response | None]:
    """For a supervisors' page (panel, reports): the signed-in user and its language, or
    the response to send instead (to the login page, or a translated 403 page)."""
    user = await current_user(request)
    lang = request_language(request)
    if user is None:
        return None, lang, RedirectResponse("/login", status_code=303)
    if not user.has_role("supervisor"):
        with i18n.use_language(lang):
            html = templates.get_template("message.html").render(
                lang=lang, languages=i18n.LANGUAGES, message=i18n.reason_message("forbidden")
            )
        return user, lang, HTMLResponse(html, status_code=403, headers=SECURITY_HEADERS)
    return user, lang, None


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    return env
