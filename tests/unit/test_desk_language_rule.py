"""An agent's desk language follows the browser's Accept-Language until the agent picks
one (issue #16): ``agent add`` stores no language by default, the desk then speaks the
browser's language, and a choice in the desk's menu wins from then on, on every browser."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import Account, demo_for, make_accounts, make_settings

from asterisk_cube.cli import cli
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services.provisioning import AGENT_LANGUAGES
from asterisk_cube.web.app import create_app
from asterisk_cube.web.desktop import desktop_mount
from asterisk_cube.web.i18n import LANGUAGES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NB = {"Accept-Language": "nb-NO,nb;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


@pytest.fixture
def app(tmp_path):
    sessions, ids = make_accounts(tmp_path, [Account("pia", "pia-secret-12", "Pia", language=None)])
    hub = EventHub()
    settings = make_settings(tmp_path)
    mount = desktop_mount(settings, demo_for(hub, ids), hub, sessions)
    return create_app(settings, object(), extra_routes=[mount]), sessions


def client(app, headers):
    c = TestClient(app[0], headers=headers)
    resp = c.post("/api/login", json={"username": "pia", "password": "pia-secret-12"})
    assert resp.status_code == 200, resp.text
    c.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
    return c


def test_the_desk_follows_the_browser_until_the_agent_picks(app):
    nb, en = client(app, NB), client(app, EN)
    assert 'lang="nb"' in nb.get("/desk").text
    assert 'lang="en"' in en.get("/desk").text
    assert nb.post("/api/language", json={"language": "en"}).json()["language"] == "en"
    assert 'lang="en"' in nb.get("/desk").text  # the choice wins over the browser
    again = client(app, NB)  # ... on a new login too: it is stored on the agent
    assert 'lang="en"' in again.get("/desk").text
    with app[1]() as s:
        assert s.scalar(select(m.Agent.language).where(m.Agent.username == "pia")) == "en"


def test_agent_add_stores_no_language_unless_given(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    runner = CliRunner()
    env = {"ASTERISK_CUBE_DATABASE_URL": url, "ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    for args in (["agent", "add", "kari"], ["agent", "add", "nils", "--language", "nb"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
    bad = runner.invoke(cli, ["agent", "add", "xena", "--language", "sv"], env=env)
    assert bad.exit_code != 0
    assert "language 'sv' is not one of en, nb" in bad.output
    with make_sessionmaker(make_engine(url))() as s:
        found = dict(s.execute(select(m.Agent.username, m.Agent.language)).all())
    assert found == {"kari": None, "nils": "nb"}  # xena: nothing half-written


def test_provisioning_knows_the_desk_languages():
    assert set(AGENT_LANGUAGES) == set(LANGUAGES)
