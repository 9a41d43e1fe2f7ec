"""Ports of one pytest-xdist worker (``./scripts/test`` runs the suite in two processes).

Each worker owns its sandbox Asterisk, its crossnode peer, its PostgreSQL cluster and its
``serve`` ports (the latter derive from the sandbox's base). ``conftest.py`` calls
:func:`worker_env` before any test module reads the environment, and exports the result,
so subprocesses (``serve``, SIPp, a nested pytest) see the worker's ports too.

Per worker N (``PYTEST_XDIST_WORKER`` = ``gwN``), from the environment:

- ``ASTERISK_CUBE_TEST_BASE_PORTS`` (comma list, one base per worker), else, when
  ``ASTERISK_CUBE_TEST_BASE_PORT`` is set, that + N * 11000, else the defaults below;
- ``ASTERISK_CUBE_TEST_PEER_BASE_PORTS``, else the default's peer when the base is the
  default too, else the base - 4500 (the crossnode test's default: below the base, clear
  of the worker's own base .. base + 6400);
- ``ASTERISK_CUBE_TEST_PG_PORTS``, else ``ASTERISK_CUBE_TEST_PG_PORT`` + N * 11000, else
  the defaults below.

The defaults (CI) keep every port below 32768, where Linux's ephemeral ports begin
(``ip_local_port_range``): a serve or Asterisk port up there can be taken a moment before
by an outgoing connection's source port, and the bind fails ("address in use", seen three
times in one afternoon with the peer at 30000 + 4102). They also keep clear of the demo's
15000 .. 19400.

Without xdist (``PYTEST_XDIST_WORKER`` unset) nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The files that take longest (``--durations`` of a run: 1-3 minutes each), run first
#: under xdist; the rest keep their order (browser, integration, ... unit last, the many
#: short files filling in at the end).
LONGEST_FIRST = (
    "integration/test_dialer_e2e.py",
    "browser/test_demo_lives.py",
    "integration/test_nodes_ownership_pg.py",
    "browser/test_desk_callbacks.py",
    "integration/test_crossnode_trunk.py",
    "integration/test_install_from_wheel.py",
    "integration/test_audio_live.py",
    "security/test_contact_search_scope.py",
    "integration/test_nodes_pg.py",
    "integration/test_answering_entry.py",
)

#: a sandbox instance spans base + 38 .. base + 4300 (SIPp media included)
SPAN = 4400
#: a worker's base .. base + 6400: its sandbox and the stop-run victim at base + 2000
STEP = 11000
PEER_BELOW = 4500
#: the ports a sandbox instance binds, as offsets from its base: AMI .. AGI and the SMTP
#: test server, RTP, SIPp media and the nodes' serve ports
INSTANCE_OFFSETS = (range(38, 626), range(1000, 2000), range(3000, 4301))
#: a real Asterisk's SIP, AMI and HTTP ports: no test instance binds them
RESERVED = (5060, 5038, 8088)
#: (base, peer base, PostgreSQL) per worker when nothing is set: all below 32768, none of
#: ``RESERVED`` in any instance (worker 1 was at 8000, whose ARI is 8088, and its peer at
#: 3500, whose RTP range held 5038 and 5060)
DEFAULT_PORTS = ((25000, 20500, 25432), (8100, 2100, 8432))


class WorkerPortsError(ValueError):
    pass


def worker_index(env: Mapping[str, str]) -> int | None:
    name = env.get("PYTEST_XDIST_WORKER", "")
    if not name:
        return None
    if not name.startswith("gw") or not name[2:].isdigit():
        raise WorkerPortsError(f"unexpected PYTEST_XDIST_WORKER {name!r} (want gw0, gw1, ...)")
    return int(name[2:])


def _pick(env: Mapping[str, str], key: str, n: int, derived: int) -> int:
    listed = env.get(key + "S", "").strip()
    if not listed:
        return derived
    ports = [p.strip() for p in listed.split(",")]
    if n >= len(ports):
        raise WorkerPortsError(
            f"{key}S={listed!r} names {len(ports)} port(s), worker {n} needs one"
        )
    if not ports[n].isdigit():
        raise WorkerPortsError(f"{key}S={listed!r}: {ports[n]!r} is not a port number")
    return int(ports[n])


def worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables to set for this worker (empty outside xdist)."""
    n = worker_index(env)
    if n is None:
        return {}
    custom = "ASTERISK_CUBE_TEST_BASE_PORT" in env
    if not custom and n >= len(DEFAULT_PORTS):
        raise WorkerPortsError(
            f"worker gw{n}: the default ports serve {len(DEFAULT_PORTS)} workers: "
            "set ASTERISK_CUBE_TEST_BASE_PORT or the ...PORTS lists"
        )
    default_base, default_peer, default_pg = DEFAULT_PORTS[0 if custom else n]
    base = _pick(
        env,
        "ASTERISK_CUBE_TEST_BASE_PORT",
        n,
        int(env["ASTERISK_CUBE_TEST_BASE_PORT"]) + n * STEP if custom else default_base,
    )
    defaults = not custom and not env.get("ASTERISK_CUBE_TEST_BASE_PORTS", "").strip()
    peer = _pick(
        env, "ASTERISK_CUBE_TEST_PEER_BASE_PORT", n, default_peer if defaults else base - PEER_BELOW
    )
    pg_set = env.get("ASTERISK_CUBE_TEST_PG_PORT")
    pg = _pick(
        env,
        "ASTERISK_CUBE_TEST_PG_PORT",
        n,
        int(pg_set) + n * STEP if pg_set else default_pg,
    )
    for what, port in (("base", base), ("peer base", peer)):
        if not 1024 <= port <= 65535 - SPAN:
            raise WorkerPortsError(
                f"worker gw{n}: sandbox {what} port {port} leaves no room for its "
                f"{SPAN} ports below 65535: set the ...PORTS lists"
            )
    if not 1024 <= pg <= 65535:
        raise WorkerPortsError(f"worker gw{n}: PostgreSQL port {pg} is not a usable port")
    return {
        "ASTERISK_CUBE_TEST_BASE_PORT": str(base),
        "ASTERISK_CUBE_TEST_PEER_BASE_PORT": str(peer),
        "ASTERISK_CUBE_TEST_PG_PORT": str(pg),
    }
