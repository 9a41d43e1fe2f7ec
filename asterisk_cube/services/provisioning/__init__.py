"""Provisioning: lines, agents, skills, campaigns, clients and enquiry categories.

This package is the one API (``from asterisk_cube.services import provisioning as p``);
each concept is a module: ``common`` (the error, validators, lookups), ``lines``,
``agents``, ``campaigns``, ``clients``, ``enquiries``.

Every function validates all of its input before touching the session, and
raises ``ProvisioningError`` naming the problem. Callers own the transaction
(``db.session.transaction``), so a failure leaves nothing half-written.
"""

from __future__ import annotations

from .agents import (
    add_agent,
    agent_rows,
    grant_lines,
    remove_agent,
    revoke_lines,
    update_agent,
)
from .campaigns import (
    add_campaign,
    campaign_rows,
    campaign_windows_text,
    set_campaign_status,
    update_campaign,
)
from .clients import (
    add_client,
    add_special_day,
    client_rows,
    set_client_hours,
    touch_client,
)
from .common import (
    AGENT_LANGUAGES,
    ProvisioningError,
    audit,
    check_did,
    check_own_number,
    check_positive,
    check_timezone,
    did_key,
    get_agent,
    get_campaign,
    get_client,
    get_line,
    get_or_create_skill,
    parse_ratio,
    parse_weekly_spec,
)
from .enquiries import (
    add_category,
    add_topics,
    enquiry_rows,
    get_category,
)
from .lines import (
    add_line,
    line_rows,
    remove_line,
    update_line,
)

__all__ = [
    "AGENT_LANGUAGES",
    "ProvisioningError",
    "add_agent",
    "add_campaign",
    "add_category",
    "add_client",
    "add_line",
    "add_special_day",
    "add_topics",
    "agent_rows",
    "audit",
    "campaign_rows",
    "campaign_windows_text",
    "check_did",
    "check_own_number",
    "check_positive",
    "check_timezone",
    "client_rows",
    "did_key",
    "enquiry_rows",
    "get_agent",
    "get_campaign",
    "get_category",
    "get_client",
    "get_line",
    "get_or_create_skill",
    "grant_lines",
    "line_rows",
    "parse_ratio",
    "parse_weekly_spec",
    "remove_agent",
    "remove_line",
    "revoke_lines",
    "set_campaign_status",
    "set_client_hours",
    "touch_client",
    "update_agent",
    "update_campaign",
    "update_line",
]
