"""Navigation by role (issue #16): where a user lands after login and what the header's
navigation (``templates/_nav.html``) needs on every signed-in page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .auth import User, csrf_token

PAGES = ("desk", "panel", "reports")


def landing(user: User) -> str:
    """Supervisors and admins land on the live panel, agents on their desk."""
    return "/panel" if user.has_role("supervisor") else "/desk"


def nav_context(request: Request, page: str) -> dict[str, Any]:
    """The template variables of the header navigation for ``page`` (one of PAGES)."""
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}")
    return {"nav_page": page, "nav_csrf": csrf_token(request)}
