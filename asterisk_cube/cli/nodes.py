"""``asterisk-cube node list``: the serve nodes sharing this database and their leases."""

from __future__ import annotations

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.db.models import utcnow
from asterisk_cube.services.nodes import nodes_view

COLUMNS = ["name", "live", "host", "pid", "started_at", "heartbeat_at"]


@click.group()
def node() -> None:
    """Serve nodes: each holds a lease on its [node] name (docs/operations.md)."""


@db_command(node, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """Every node the database knows, live (lease not expired) or down."""
    emit(nodes_view(s, utcnow()), fmt, COLUMNS)
