"""The answering-service call script as the agent desktop shows it (F-S1..F-S7).

:func:`client_script` reads a client's configuration and runs the pure
:func:`asterisk_cube.core.script.build_script`; :func:`script_data` turns the result into
JSON-ready data (for the desktop's push/API) and :func:`script_html` into an HTML fragment
(server-rendered; every client text is escaped). Popped by the dialed number: the call's
``client_id`` comes from the answering-service line (``Call.client_id``).

    with sessions() as s:
        data = script_data(client_script(s, client_id, now, words=DayPartWords(...)))
    html = script_html(data)

Sync functions taking a session: from async code run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment
from sqlalchemy.orm import Session

from asterisk_cube.core import script as cs
from asterisk_cube.core.hours import HoursWords, format_summary
from asterisk_cube.services.client_config import load_script_config


class UnknownClient(LookupError):
    pass


def client_script(
    s: Session,
    client_id: int,
    now: datetime | None = None,
    *,
    words: cs.DayPartWords | None = None,
    agent_name: str = "",
) -> cs.AgentScript:
    """The script for ``client_id`` at ``now`` (default: the current time)."""
    now = now or datetime.now(UTC)
    config = load_script_config(s, client_id, now)
    if config is None:
        raise UnknownClient(f"no client with id {client_id}")
    return cs.build_script(config, now, words, agent_name)


def _handling(resolved: cs.ResolvedHandling) -> dict[str, Any]:
    h = resolved.handling
    return {
        "kind": h.kind.value,
        "targets": list(h.targets),
        "ring_seconds": h.ring_seconds,
        "source": resolved.source.value,
        "announce_hours": resolved.announce_hours,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def script_data(script: cs.AgentScript, hours_words: HoursWords | None = None) -> dict[str, Any]:
    """JSON-ready script. Enum keys (``hours.status``, ``handling.source``...) are left for
    the web layer to translate; ``hours.summary`` is formatted with ``hours_words``."""
    exception = script.exception
    return {
        "client_id": script.client_id,
        "client": script.client_name,
        "tone": script.tone.value,
        "prompt_set": script.prompt_set.value,
        "language": script.language,
        # The client's zone: the desk shows the exception's end and the next opening on the
        # client's wall clock, not the browser's.
        "timezone": getattr(script.hours.local_time.tzinfo, "key", None),
        "greeting": script.greeting,
        "day_part": script.day_part.value,
        "instruction": script.work_instruction,
        "exception": None
        if exception is None
        else {
            "id": exception.exception_id,
            "instruction": exception.instruction,
            "from": _iso(exception.starts_at),
            "until": _iso(exception.ends_at),
            "overrides": exception.handling is not None,
        },
        "hours": {
            "status": script.hours.status.value,
            "open": script.is_open,
            "closes_at": _iso(script.hours.closes_at),
            "next_open": _iso(script.hours.next_open),
            "holiday": script.hours.holiday_name,
            "summary": format_summary(script.hours_summary, hours_words),
        },
        "handling": _handling(script.handling),
        "employees": [
            {
                "id": line.employee.employee_id,
                "name": line.employee.name,
                "department": line.employee.department,
                "title": line.employee.title,
                "info": line.employee.info,
                "handling": _handling(line.handling),
            }
            for line in script.employees
        ],
        "faq": [
            {
                "id": line.entry.faq_id,
                "question": line.entry.question,
                "answer": line.entry.answer,
                "employee_id": line.entry.employee_id,
                "handling": _handling(line.handling),
            }
            for line in script.faq
        ],
        "spell_names": script.spell_names,
        "repeat_numbers": script.repeat_numbers,
    }


# ------------------------------------------------------------------ HTML fragment

_TEMPLATE = """\
<section class="cube-script tone-{{ d.tone }}" data-client="{{ d.client_id }}">
  <header>
    <h2 class="client">{{ d.client }}</h2>
    <span class="hours status-{{ d.hours.status }}">{{ t.status[d.hours.status] }}</span>
  </header>
  {% if d.exception %}
  <div class="exception{% if d.exception.overrides %} overrides{% endif %}" role="alert">
    <strong>{{ t.current }}</strong> {{ d.exception.instruction }}
  </div>
  {% endif %}
  <p class="greeting">&ldquo;{{ d.greeting }}&rdquo;</p>
  {% if d.instruction %}<p class="instruction">{{ d.instruction }}</p>{% endif %}
  <p class="handling handling-{{ d.handling.kind }}">
    {{ t.handling[d.handling.kind] }}{% if d.handling.targets %}:
    {{ d.handling.targets | join(", ") }}{% endif %}
    {% if d.handling.announce_hours %}<span class="announce">{{ t.tell_hours }}</span>{% endif %}
  </p>
  {% if d.spell_names or d.repeat_numbers %}
  <ul class="tone-hints">
    {% if d.spell_names %}<li>{{ t.spell }}</li>{% endif %}
    {% if d.repeat_numbers %}<li>{{ t.repeat }}</li>{% endif %}
  </ul>
  {% endif %}
  <p class="opening-hours">{{ t.hours }}: {{ d.hours.summary }}</p>
  {% if d.employees %}
  <table class="employees">
    {% for e in d.employees %}
    <tr data-employee="{{ e.id }}">
      <td>{{ e.name }}</td><td>{{ e.department }}</td><td>{{ e.title }}</td>
      <td class="handling-{{ e.handling.kind }}">{{ t.handling[e.handling.kind] }}
        {%- if e.handling.targets %}: {{ e.handling.targets | join(", ") }}{% endif %}</td>
    </tr>
    {% endfor %}
  </table>
  {% endif %}
  {% if d.faq %}
  <dl class="faq">
    {% for f in d.faq %}
    <dt data-faq="{{ f.id }}">{{ f.question }}</dt>
    <dd>{{ f.answer }}
      <em class="handling-{{ f.handling.kind }}">({{ t.handling[f.handling.kind] }})</em></dd>
    {% endfor %}
  </dl>
  {% endif %}
</section>
"""

ENGLISH = {
    "status": {"open": "Open", "closed": "Closed", "holiday": "Holiday"},
    "current": "Current:",
    "handling": {"note": "Take a note", "forward": "Announce and forward"},
    "tell_hours": "Outside opening hours: tell the caller our hours.",
    "spell": "Spell names back to the caller.",
    "repeat": "Repeat numbers back to the caller.",
    "hours": "Opening hours",
}

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_COMPILED = _ENV.from_string(_TEMPLATE)


def script_html(data: dict[str, Any], texts: dict[str, Any] | None = None) -> str:
    """The script as an HTML fragment (escaped); ``texts`` translates the fixed labels."""
    return _COMPILED.render(d=data, t=texts or ENGLISH)
