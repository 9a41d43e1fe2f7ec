"""Issue #12 item 5: ``config show`` prints no credential.

It already masked the ARI/AMI/SMTP passwords but printed ``web.secret_key`` (enough to
sign an admin session cookie offline) and the password inside ``database.url``.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asterisk_cube.cli import cli

SECRETS = {
    "ASTERISK_CUBE_ARI_PASSWORD": "ari-pw-71",
    "ASTERISK_CUBE_AMI_SECRET": "ami-pw-72",
    "ASTERISK_CUBE_SMTP_PASSWORD": "smtp-pw-73",
    "ASTERISK_CUBE_WEB_SECRET_KEY": "web-key-74-abcdefghijklmnop",
}
DB_PASSWORD = "db-pw-75"


@pytest.fixture
def env(tmp_path, monkeypatch):
    cfg = tmp_path / "cube.toml"
    cfg.write_text("")
    values = {
        **SECRETS,
        "ASTERISK_CUBE_CONFIG": str(cfg),
        "ASTERISK_CUBE_DATA_DIR": str(tmp_path),
        "ASTERISK_CUBE_DATABASE_URL": f"postgresql+psycopg://cube:{DB_PASSWORD}@db.example/cube",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.mark.parametrize("args", [[], ["--toml"]], ids=["json", "toml"])
def test_config_show_masks_every_credential(env, args):
    out = CliRunner().invoke(cli, ["config", "show", *args])
    assert out.exit_code == 0, out.output
    for secret in [*SECRETS.values(), DB_PASSWORD]:
        assert secret not in out.output
    assert "postgresql+psycopg://cube:***@db.example/cube" in out.output
    if not args:
        data = json.loads(out.output)
        assert data["web"]["secret_key"] == "***"
        assert data["ari"]["password"] == "***"
        assert data["ari"]["username"] == "asterisk-cube"  # the rest stays readable


def test_show_secrets_prints_them_on_request(env):
    out = CliRunner().invoke(cli, ["config", "show", "--toml", "--show-secrets"])
    assert out.exit_code == 0, out.output
    for secret in [*SECRETS.values(), DB_PASSWORD]:
        assert secret in out.output
