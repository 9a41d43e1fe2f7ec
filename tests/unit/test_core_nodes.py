"""Node names and lease rules (issue #14), on an injected clock."""

import datetime as dt

import pytest

from asterisk_cube.config import ConfigError, load_settings
from asterisk_cube.core import nodes as n

T0 = dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC)


def lease(until_s: float, host: str = "h1", pid: int = 10) -> n.Lease:
    return n.Lease("a", host, pid, T0, T0, T0 + dt.timedelta(seconds=until_s))


@pytest.mark.parametrize("name", ["a", "node-1", "b_2", "x" * 32])
def test_good_names(name):
    assert n.name_problem(name) is None


@pytest.mark.parametrize("name", ["", "A", "-a", "a b", "a.b", "x" * 33, "æ"])
def test_bad_names(name):
    assert "short name" in n.name_problem(name)


@pytest.mark.parametrize(
    ("host", "name"),
    [("pbx1", "pbx1"), ("PBX-2.example.com", "pbx-2"), ("...", "node"), ("a b", "a-b")],
)
def test_default_name_from_host(host, name):
    assert n.default_name(host) == name
    assert n.name_problem(n.default_name(host)) is None


def test_setting_is_validated_in_one_line():
    assert load_settings(env={"ASTERISK_CUBE_NODE_NAME": "east"}).node_name == "east"
    with pytest.raises(ConfigError, match=r"^node\.name must be a short name .*'East 1'$"):
        load_settings(env={"ASTERISK_CUBE_NODE_NAME": "East 1"})


def test_default_setting_is_the_host_name(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "Cube-7.lan")
    assert load_settings(env={}).node_name == "cube-7"


def test_live_until_the_lease_ends():
    assert n.is_live(lease(1), T0)
    assert not n.is_live(lease(0), T0)
    assert n.expires(T0) == T0 + dt.timedelta(seconds=n.LEASE_SECONDS)
    assert n.RENEW_SECONDS * 2 < n.LEASE_SECONDS  # two renewals may fail before it expires


def test_renewal_due_every_interval():
    assert not n.renew_due(T0, T0 + dt.timedelta(seconds=n.RENEW_SECONDS - 0.1))
    assert n.renew_due(T0, T0 + dt.timedelta(seconds=n.RENEW_SECONDS))


def test_refusal_only_while_a_live_process_holds_it():
    assert n.refusal(None, T0, "h1", pid_alive=False) is None
    assert n.refusal(lease(-1), T0, "h2", pid_alive=True) is None  # expired: dead node
    why = n.refusal(lease(10), T0, "h2", pid_alive=True)  # another host: wait for expiry
    assert why.startswith("node name 'a' is in use by a live serve (pid 10 on h1")
    assert "\n" not in why
    assert n.refusal(lease(10), T0, "h1", pid_alive=True)  # same host, still running
    assert n.refusal(lease(10), T0, "h1", pid_alive=False) is None  # same host, crashed


def test_still_ours_compares_the_holder():
    held = lease(10)
    assert n.still_ours(held, "h1", 10, T0)
    assert not n.still_ours(held, "h1", 11, T0)
    assert not n.still_ours(held, "h1", 10, T0 + dt.timedelta(seconds=1))
    assert not n.still_ours(None, "h1", 10, T0)
