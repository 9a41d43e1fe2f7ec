"""``asterisk-cube agent``: users with SIP endpoints, skills and permitted lines."""

import sys

import click

from asterisk_cube.cli.common import FORMAT_OPTION, db_command, emit
from asterisk_cube.services import provisioning as p

ROLES = click.Choice(["agent", "supervisor", "admin"])


def _password(password: str | None, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return password


@click.group()
def agent() -> None:
    """Agents, supervisors and admins."""


@db_command(agent, "add")
@click.argument("username")
@click.option("--name", help="Full name.")
@click.option("--endpoint", help="Phone, e.g. PJSIP/agent01.")
@click.option("--role", type=ROLES, default="agent", show_default=True)
@click.option("--password", help="Web login password (or use --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--skill", "skills", multiple=True, help="Skill (repeatable); created if new.")
@click.option("--line", "lines", multiple=True, help="DID the agent may serve (repeatable).")
@click.option(
    "--language",
    default=None,
    help="Desk language (en, nb); by default the desk follows the agent's browser.",
)
def add(s, username, name, endpoint, role, password, password_stdin, skills, lines, language):
    """Add an agent."""
    pw = _password(password, password_stdin)
    a = p.add_agent(s, username, name, endpoint, role, pw, skills, lines, language)
    return f"agent {a.username} added ({a.role.value})"


@db_command(agent, "set")
@click.argument("username")
@click.option("--name")
@click.option("--endpoint", help="Phone, e.g. PJSIP/agent01; empty to clear.")
@click.option("--role", type=ROLES)
@click.option("--password")
@click.option("--password-stdin", is_flag=True)
@click.option("--active/--inactive", default=None)
@click.option("--add-skill", "add_skills", multiple=True)
@click.option("--remove-skill", "remove_skills", multiple=True)
def set_(
    s, username, name, endpoint, role, password, password_stdin, active, add_skills, remove_skills
):
    """Change an agent."""
    pw = _password(password, password_stdin)
    p.update_agent(s, username, name, endpoint, role, pw, active, add_skills, remove_skills)
    return f"agent {username} updated"


def _lines_command(verb: str, change, done: str, help: str) -> click.Command:
    """``grant``/``revoke``: change the lines an agent may serve."""

    @db_command(agent, verb, help=help)
    @click.argument("username")
    @click.argument("dids", nargs=-1, required=True)
    def command(s, username, dids):
        change(s, username, dids)
        return f"agent {username} {done} {', '.join(dids)}"

    return command


grant = _lines_command("grant", p.grant_lines, "may serve", "Permit an agent to serve lines.")
revoke = _lines_command(
    "revoke", p.revoke_lines, "no longer serves", "Withdraw lines from an agent."
)


@db_command(agent, "remove")
@click.argument("username")
def remove(s, username):
    """Remove an agent."""
    p.remove_agent(s, username)
    return f"agent {username} removed"


@db_command(agent, "list")
@FORMAT_OPTION
def list_(s, fmt):
    """List agents with skills, lines and current state."""
    emit(p.agent_rows(s), fmt)
