"""``asterisk-cube agent``: users with SIP endpoints, skills and permitted lines."""

import sys

import click

from asterisk_cube.cli.common import FORMAT_OPTION, emit, friendly_errors, pass_ctx
from asterisk_cube.services import provisioning as p

ROLES = click.Choice(["agent", "supervisor", "admin"])


def _password(password: str | None, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return password


@click.group()
def agent() -> None:
    """Agents, supervisors and admins."""


@agent.command("add")
@click.argument("username")
@click.option("--name", help="Full name.")
@click.option("--endpoint", help="Phone, e.g. PJSIP/agent01.")
@click.option("--role", type=ROLES, default="agent", show_default=True)
@click.option("--password", help="Web login password (or use --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--skill", "skills", multiple=True, help="Skill (repeatable); created if new.")
@click.option("--line", "lines", multiple=True, help="DID the agent may serve (repeatable).")
@click.option("--language", default="en", show_default=True, help="Desktop language (en, nb).")
@pass_ctx
@friendly_errors
def add(ctx, username, name, endpoint, role, password, password_stdin, skills, lines, language):
    """Add an agent."""
    pw = _password(password, password_stdin)
    with ctx.transaction() as s:
        a = p.add_agent(s, username, name, endpoint, role, pw, skills, lines, language)
        click.echo(f"agent {a.username} added ({a.role.value})")


@agent.command("set")
@click.argument("username")
@click.option("--name")
@click.option("--endpoint", help="Phone, e.g. PJSIP/agent01; empty to clear.")
@click.option("--role", type=ROLES)
@click.option("--password")
@click.option("--password-stdin", is_flag=True)
@click.option("--active/--inactive", default=None)
@click.option("--add-skill", "add_skills", multiple=True)
@click.option("--remove-skill", "remove_skills", multiple=True)
@pass_ctx
@friendly_errors
def set_(
    ctx, username, name, endpoint, role, password, password_stdin, active, add_skills, remove_skills
):
    """Change an agent."""
    pw = _password(password, password_stdin)
    with ctx.transaction() as s:
        p.update_agent(s, username, name, endpoint, role, pw, active, add_skills, remove_skills)
    click.echo(f"agent {username} updated")


@agent.command("grant")
@click.argument("username")
@click.argument("dids", nargs=-1, required=True)
@pass_ctx
@friendly_errors
def grant(ctx, username, dids):
    """Permit an agent to serve lines."""
    with ctx.transaction() as s:
        p.grant_lines(s, username, dids)
    click.echo(f"agent {username} may serve {', '.join(dids)}")


@agent.command("revoke")
@click.argument("username")
@click.argument("dids", nargs=-1, required=True)
@pass_ctx
@friendly_errors
def revoke(ctx, username, dids):
    """Withdraw lines from an agent."""
    with ctx.transaction() as s:
        p.revoke_lines(s, username, dids)
    click.echo(f"agent {username} no longer serves {', '.join(dids)}")


@agent.command("remove")
@click.argument("username")
@pass_ctx
@friendly_errors
def remove(ctx, username):
    """Remove an agent."""
    with ctx.transaction() as s:
        p.remove_agent(s, username)
    click.echo(f"agent {username} removed")


@agent.command("list")
@FORMAT_OPTION
@pass_ctx
@friendly_errors
def list_(ctx, fmt):
    """List agents with skills, lines and current state."""
    with ctx.transaction() as s:
        emit(p.agent_rows(s), fmt)
