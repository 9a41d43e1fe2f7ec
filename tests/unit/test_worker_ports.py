"""tests/workers.py: each pytest-xdist worker its own sandbox, peer and PostgreSQL ports."""

from __future__ import annotations

import pytest
import workers
from workers import SPAN, WorkerPortsError, worker_env


def test_outside_xdist_nothing_changes():
    assert worker_env({"ASTERISK_CUBE_TEST_BASE_PORT": "55800"}) == {}


def test_ci_defaults_keep_every_workers_instances_apart():
    got = [worker_env({"PYTEST_XDIST_WORKER": f"gw{n}"}) for n in (0, 1)]
    assert got[0] == {
        "ASTERISK_CUBE_TEST_BASE_PORT": "25000",
        "ASTERISK_CUBE_TEST_PEER_BASE_PORT": "20500",
        "ASTERISK_CUBE_TEST_PG_PORT": "25432",
    }
    # every port below Linux's ephemeral range, clear of the demo's 15000 .. 19400
    for env in got:
        for key, port in env.items():
            top = int(port) + (2000 + SPAN if key.endswith("BASE_PORT") else 1)
            assert top <= 32768, (key, port)
            assert top <= 15000 or int(port) >= 19400, (key, port)

    # a worker's sandbox, crossnode peer and stop-run victim (base + 2000) run one at a
    # time; the two workers' run at once: no port of one is in the other's ranges
    def ranges(env):
        base = int(env["ASTERISK_CUBE_TEST_BASE_PORT"])
        peer = int(env["ASTERISK_CUBE_TEST_PEER_BASE_PORT"])
        return [range(base, base + 2000 + SPAN), range(peer, peer + SPAN)]

    for mine in ranges(got[0]):
        for theirs in ranges(got[1]):
            assert not set(mine) & set(theirs), (mine, theirs)
    pgs = {env["ASTERISK_CUBE_TEST_PG_PORT"] for env in got}
    assert len(pgs) == 2


def test_ci_defaults_keep_off_a_real_asterisks_ports():
    """No instance of either worker (its sandbox, the stop-run victim at base + 2000, its
    crossnode peer) binds 5060, 5038 or 8088, where the machine's own Asterisk may be."""
    for n in (0, 1):
        env = worker_env({"PYTEST_XDIST_WORKER": f"gw{n}"})
        base = int(env["ASTERISK_CUBE_TEST_BASE_PORT"])
        peer = int(env["ASTERISK_CUBE_TEST_PEER_BASE_PORT"])
        for instance in (base, base + 2000, peer):
            bound = {instance + o for r in workers.INSTANCE_OFFSETS for o in r}
            assert bound.isdisjoint(workers.RESERVED), (n, instance)
        assert int(env["ASTERISK_CUBE_TEST_PG_PORT"]) not in workers.RESERVED


def test_listed_ports_per_worker():
    env = {
        "ASTERISK_CUBE_TEST_BASE_PORTS": "55800,10400",
        "ASTERISK_CUBE_TEST_PEER_BASE_PORTS": "60200,21000",
        "ASTERISK_CUBE_TEST_PG_PORTS": "20434,20437",
    }
    assert worker_env({**env, "PYTEST_XDIST_WORKER": "gw1"}) == {
        "ASTERISK_CUBE_TEST_BASE_PORT": "10400",
        "ASTERISK_CUBE_TEST_PEER_BASE_PORT": "21000",
        "ASTERISK_CUBE_TEST_PG_PORT": "20437",
    }


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ASTERISK_CUBE_TEST_BASE_PORTS": "55800"}, "worker 1 needs one"),
        ({"ASTERISK_CUBE_TEST_BASE_PORT": "55800"}, "no room"),  # 66800
        ({"ASTERISK_CUBE_TEST_PG_PORTS": "1,x"}, "'x' is not a port number"),
    ],
)
def test_bad_settings_name_the_problem(env, says):
    with pytest.raises(WorkerPortsError, match=says):
        worker_env({**env, "PYTEST_XDIST_WORKER": "gw1"})


def test_the_longest_files_named_exist():
    from pathlib import Path

    here = Path(__file__).parents[1]
    assert [f for f in workers.LONGEST_FIRST if not (here / f).is_file()] == []


def test_a_set_base_derives_both_workers_apart():
    got = [
        worker_env({"ASTERISK_CUBE_TEST_BASE_PORT": "29400", "PYTEST_XDIST_WORKER": f"gw{n}"})
        for n in (0, 1)
    ]
    assert [g["ASTERISK_CUBE_TEST_BASE_PORT"] for g in got] == ["29400", "40400"]
    assert [g["ASTERISK_CUBE_TEST_PEER_BASE_PORT"] for g in got] == ["24900", "35900"]
    spans = [
        range(
            int(g["ASTERISK_CUBE_TEST_BASE_PORT"]),
            int(g["ASTERISK_CUBE_TEST_BASE_PORT"]) + 2000 + SPAN,
        )
        for g in got
    ] + [
        range(
            int(g["ASTERISK_CUBE_TEST_PEER_BASE_PORT"]),
            int(g["ASTERISK_CUBE_TEST_PEER_BASE_PORT"]) + SPAN,
        )
        for g in got
    ]
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            assert not set(a) & set(b), (a, b)
