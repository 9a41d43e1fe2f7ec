"""``asterisk-cube doctor``: the admin's first command after install (issue #15)."""

import json

import click

from asterisk_cube.cli.common import pass_ctx
from asterisk_cube.core.doctor import summary


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--sounds-dir",
    default=None,
    envvar="ASTERISK_CUBE_SOUNDS_DIR",
    help="Where Asterisk finds the prompts (default /usr/share/asterisk/sounds/asterisk-cube; "
    "env ASTERISK_CUBE_SOUNDS_DIR, which `sandbox env` and `demo env` set).",
)
@pass_ctx
def doctor(ctx, as_json: bool, sounds_dir: str | None) -> None:
    """Check the Asterisk this is pointed at: ARI, AMI and its permissions, modules, the
    generated dialplan, FastAGI address, sounds, dial string, database, SMTP.

    Prints each check with ok / problem / how to fix; exits 1 if any problem."""
    from asterisk_cube.doctor import DEFAULT_SOUNDS_DIR, run_checks

    findings = run_checks(ctx.settings, sounds_dir or DEFAULT_SOUNDS_DIR)
    counts = summary(findings)
    if as_json:
        click.echo(json.dumps({"findings": [f.to_dict() for f in findings], **counts}, indent=2))
    else:
        width = max(len(f.check) for f in findings)
        for f in findings:
            mark = "ok     " if f.ok else "PROBLEM"
            click.echo(f"{mark}  {f.check:<{width}}  {f.detail}")
            if not f.ok:
                click.echo(f"{'':7}  {'':<{width}}  fix: {f.fix}")
        click.echo(f"{counts['ok']} ok, {counts['problems']} problems")
    if counts["problems"]:
        raise SystemExit(1)
