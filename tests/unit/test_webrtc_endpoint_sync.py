"""serve's EndpointSync (webrtc.py) without Asterisk: nothing before `webrtc install`
wrote the file; a changed user list rewrites it and reloads PJSIP; a failing reload is
logged once and tried again at the next change. On the sandbox:
tests/integration/test_webrtc_endpoints_live.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.web import make_accounts, make_settings

from asterisk_cube import webrtc as wr
from asterisk_cube.ami import commands
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction

WS = "wss://pbx.example.com:8089/ws"


def setup(tmp_path):
    sessions, _ids = make_accounts(tmp_path)
    settings = make_settings(tmp_path)
    settings.webrtc.ws_url = WS
    settings.webrtc.pjsip_path = str(tmp_path / "pjsip_asterisk-cube.conf")
    settings.webrtc.cert_dir = str(tmp_path / "keys")
    return wr.EndpointSync(settings, sessions), Path(settings.webrtc.pjsip_path), sessions


def add_user(sessions, name):
    with transaction(sessions) as s:
        s.add(m.Agent(username=name, name=name.title(), password_hash="x"))


def test_nothing_before_webrtc_install_wrote_the_file(tmp_path):
    sync, path, sessions = setup(tmp_path)
    add_user(sessions, "ny")
    assert sync.sync() is False
    assert not path.exists()


def test_a_new_user_rewrites_the_file_and_reloads_pjsip(tmp_path, monkeypatch, caplog):
    sync, path, sessions = setup(tmp_path)
    path.write_text("; installed before\n")
    commands_run = []

    def ami_away(ami, command, timeout=10.0):
        commands_run.append(command)
        raise commands.AmiError("cannot reach AMI")

    monkeypatch.setattr(commands, "run_command", ami_away)
    add_user(sessions, "ny")
    assert sync.sync() is False  # written, but Asterisk did not reload it
    assert "cube-webrtc-ny" in path.read_text()
    assert sync.sync() is False  # the same file: tried again, not logged again
    assert commands_run == ["module reload res_pjsip.so"] * 2
    failures = [r for r in caplog.records if r.getMessage() == "webrtc_endpoints_not_updated"]
    assert len(failures) == 1

    def ami_back(ami, command, timeout=10.0):
        commands_run.append(command)
        return "Transport:  cube-webrtc-wss  wss  0.0.0.0:0"

    monkeypatch.setattr(commands, "run_command", ami_back)
    assert sync.sync() is True
    assert sync.sync() is False  # loaded: nothing until the users change
    assert commands_run[2:] == ["module reload res_pjsip.so", "pjsip show transports"]
