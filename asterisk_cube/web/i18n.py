"""Translations for the web pages and their JavaScript (Babel / gettext).

Every user-facing string goes through gettext: ``_("...")`` in Python, ``{{ _("...") }}``
or ``{% trans %}`` in templates, ``_("...")`` in ``static/*.js`` (the page embeds the
catalog as JSON, see :func:`js_catalog`). Catalogs live in ``asterisk_cube/locale``;
``docs/i18n.md`` has the extract / update / compile commands.

The language of a request is, in order: the logged-in agent's choice (its ``language``
column, kept in the session), the browser's ``Accept-Language``, then English.
Rendering sets the language in a context variable, so the module-level :func:`gettext`
and the templates' ``_`` translate for the request being served.
"""

from __future__ import annotations

import functools
import gettext as _gettext_mod
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
# language code -> its name in that language (shown in the language menu)
LANGUAGES: dict[str, str] = {"en": "English", "nb": "Norsk bokmål"}
_ALIASES = {"no": "nb", "nb": "nb", "nn": "nb", "en": "en"}

_current: ContextVar[str] = ContextVar("cube_language", default=DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (translate on use)."""
    return message


def normalize(language: str | None) -> str | None:
    """A supported language code for ``language`` ("nb-NO", "no", "en_GB"...), or None."""
    if not language:
        return None
    base = language.strip().replace("_", "-").split("-", 1)[0].lower()
    return _ALIASES.get(base)


def negotiate(accept_language: str | None) -> str | None:
    """The best supported language in an ``Accept-Language`` header, or None."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag))
    for _q, _i, tag in sorted(ranked):
        found = normalize(tag)
        if found:
            return found
    return None


@functools.cache
def translations(language: str) -> _gettext_mod.NullTranslations:
    """The compiled catalog for ``language`` (English is the source language)."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return _gettext_mod.NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], domain=DOMAIN)


def current_language() -> str:
    return _current.get()


@contextmanager
def use_language(language: str):
    """Translate with ``language`` inside the block (one request's rendering)."""
    token = _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


_ = gettext


@functools.cache
def js_catalog(language: str) -> dict[str, str]:
    """msgid -> translation for every singular message of ``language`` (for the JS)."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return {}
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        catalog = read_mo(fh)
    return {
        str(msg.id): str(msg.string)
        for msg in catalog
        if msg.id and isinstance(msg.id, str) and isinstance(msg.string, str) and msg.string
    }


# --- words the desk sends as keys ------------------------------------------------------

# Refusal reasons (asterisk_cube.acd.contract) and the web layer's own refusals.
REASONS: dict[str, str] = {
    "not_found": N_("That call, contact or missed call is not yours or no longer exists."),
    "not_permitted": N_("You are not permitted to do that."),
    "illegal_state": N_("That is not possible in your current state."),
    "registration_required": N_("Register the enquiry before closing the call."),
    "invalid": N_("Some of the input is not valid."),
    "other_node": N_("You are logged in on another node. Log out there first."),
    "csrf": N_("The form has expired or did not come from this page. Reload and try again."),
    "login_required": N_("Please log in."),
    "forbidden": N_("Your role does not give access to this page."),
    "bad_login": N_("Wrong username or password."),
    "throttled": N_("Too many failed attempts. Wait a minute and try again."),
    "login_busy": N_("Too many logins at once. Try again in a few seconds."),
    "too_many_streams": N_("Too many desk windows are open. Close one."),
    "too_many_panels": N_("Too many panel windows are open. Close one."),
    "unsupported_media_type": N_("Send the request as JSON."),
    "too_large": N_("The request is too large."),
    "internal": N_("Something went wrong. The error has been logged; try again."),
}

STATES: dict[str, str] = {
    "logged_out": N_("Logged out"),
    "ready": N_("Ready"),
    "offered": N_("Call offered"),
    "busy": N_("On a call"),
    "wrap_up": N_("Wrap-up"),
    "paused": N_("Paused"),
}

CALL_KINDS: dict[str, str] = {
    "customer_callback": N_("Customer calling back"),
    "new_customer": N_("New customer"),
    "service": N_("Service call"),
    "answering": N_("Answering service"),
    "missed_callback": N_("Missed-call callback"),
}

CALL_STATES: dict[str, str] = {
    "connecting": N_("Connecting"),
    "connected": N_("Connected"),
    "ended": N_("Ended"),
}

# Built-in pause codes (core.agents.PauseReason) and the desk's "login" pause; labels
# of admin-defined codes come from the database as they are.
PAUSE_REASONS: dict[str, str] = {
    "admin": N_("Admin"),
    "break": N_("Break"),
    "training": N_("Training"),
    "lunch": N_("Lunch"),
    "no_answer": N_("Missed offer"),
    "other": N_("Other"),
    "login": N_("Starting work"),
    # serve restarted while the agent was working: back with Ready (issue #14)
    "restart": N_("System restarted"),
}


def reason_message(reason: str) -> str:
    return gettext(REASONS.get(reason, REASONS["invalid"]))


def pause_label(code: str, label: str) -> str:
    return gettext(PAUSE_REASONS[code]) if code in PAUSE_REASONS else label


def word_catalog() -> dict[str, dict[str, str]]:
    """The translated key words the desktop's JS shows (states, call kinds...)."""
    return {
        "states": {k: gettext(v) for k, v in STATES.items()},
        "kinds": {k: gettext(v) for k, v in CALL_KINDS.items()},
        "call_states": {k: gettext(v) for k, v in CALL_STATES.items()},
        "pause": {k: gettext(v) for k, v in PAUSE_REASONS.items()},
        "reasons": {k: gettext(v) for k, v in REASONS.items()},
    }
