"""Two (or more) `serve` nodes on one PostgreSQL for the tests of issue #14: one way to
build them and the checks the node tests share (rows, ARI channels, SIPp traces).

- :func:`node` is one `serve` beside a sandbox Asterisk, on the shared database, named;
  :func:`two_nodes` builds node a and node b: both on one Asterisk (b with its own web
  and AGI ports and its own Stasis app, :func:`second_node_env`), or each beside its own
  Asterisk joined by the trunk (``peer=``: each node's SIP address set for
  ``dialplan install``).
- Everything asserted from outside: :func:`ari_channels`, :func:`watch_agent_channels`
  (ARI), :func:`call_spans` / :func:`overlaps` / :func:`invites_by_number` (SIPp message
  traces), and from the rows: :func:`one_row`, :func:`call_row`, :func:`agent_row`,
  :func:`db_rows`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import re
import time
from collections import defaultdict
from pathlib import Path

import httpx
from agent_client import AgentClient
from cubeproc import Serve
from sippkit import SCENARIOS, Sipp
from sqlalchemy import create_engine, func, select, text

from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction
from asterisk_cube.sandbox import PASSWORD as ARI_PASSWORD
from asterisk_cube.sandbox import USERNAME as ARI_USER

AGENT_PASSWORD = "agent-password-1"
_BLOCK = re.compile(r"^-{20,} (\S+ \S+)$", re.M)


# --------------------------------------------------------------------------- the nodes


def node(
    inst, workdir: Path, pg_url: str, name: str, *, sip_address: bool = False, **env: str
) -> Serve:
    """A `serve` (not started) beside the sandbox instance ``inst``, on the database
    ``pg_url`` (migrated), named ``name``; ``sip_address``: the node's address on the
    inter-node trunk is its Asterisk's (two sandboxes joined by the trunk)."""
    workdir.mkdir()
    srv = Serve.on_sandbox(inst, workdir)
    srv.env.update(ASTERISK_CUBE_DATABASE_URL=pg_url, ASTERISK_CUBE_NODE_NAME=name, **env)
    if sip_address:
        srv.env["ASTERISK_CUBE_NODE_SIP_ADDRESS"] = inst.sip_address
    srv.cli("db", "upgrade")
    return srv


def second_node_env(sandbox) -> dict[str, str]:
    """Node B on A's Asterisk: its own web and AGI ports and its own Stasis app (the
    dialplan sends callers to A's app), on the same Asterisk and database."""
    base = sandbox.base_port
    return {
        "ASTERISK_CUBE_WEB_PORT": str(base + 4101),
        "ASTERISK_CUBE_AGI_PORT": str(base + 4102),
        "ASTERISK_CUBE_ARI_APP": "asterisk-cube-b",
    }


def two_nodes(sandbox, pg_url: str, tmp_path: Path, *, peer=None, **env: str):
    """Nodes a and b (not started) on one database, with the same extra ``env``: on one
    Asterisk, or b on the ``peer`` sandbox joined to a's by the trunk."""
    if peer is None:
        a = node(sandbox, tmp_path / "a", pg_url, "a", **env)
        b = node(sandbox, tmp_path / "b", pg_url, "b", **env, **second_node_env(sandbox))
    else:
        a = node(sandbox, tmp_path / "a", pg_url, "a", sip_address=True, **env)
        b = node(peer, tmp_path / "b", pg_url, "b", sip_address=True, **env)
    return a, b


def lease_env(seconds: int = 3) -> dict[str, str]:
    """A short lease, so that a killed node is dead (and taken over) within seconds."""
    return {"ASTERISK_CUBE_NODE_LEASE_SECONDS": str(seconds)}


def wait_log(srv: Serve, needle: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in srv.log():
        assert srv.proc is not None and srv.proc.poll() is None, srv.log()
        assert time.monotonic() < deadline, f"no {needle!r} in the log:\n{srv.log()}"
        time.sleep(0.05)


async def wait_view(client: AgentClient, predicate, what: str, timeout: float = 20.0):
    async with client.events() as events:
        try:
            return await events.wait_for(predicate, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {await client.view()}") from None


def customers_sipp(sandbox, tmp_path: Path, **kwargs) -> Sipp:
    """The campaign customers' SIPp (uas_customer.xml) on the sandbox's customer port."""
    return Sipp(
        SCENARIOS / "uas_customer.xml",
        sandbox.customer_ports[0],
        tmp_path / "customers",
        remote=f"127.0.0.1:{sandbox.sip_port}",
        control_port=sandbox.base_port + 300,
        media_port=sandbox.base_port + 400,
        **kwargs,
    )


# --------------------------------------------------------------------------- the rows


def one_row(pg_url: str, sql: str, **params) -> tuple:
    """The row, or () while there is none (a test waiting for the write-behind journal
    polls this: not written yet is not an error)."""
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text(sql), params).one_or_none()
            return tuple(row) if row is not None else ()
    finally:
        engine.dispose()


def node_sessions(pg_url: str, node_name: str) -> int:
    """How many PostgreSQL sessions node ``node_name``'s serve has open (by the
    ``application_name`` serve gives its connections)."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
    return one_row(pg_url, sql, name=f"asterisk-cube {node_name}")[0]


async def sessions_gone(pg_url: str, node_name: str, timeout: float = 20.0) -> None:
    """Wait until PostgreSQL has no session of a killed node left: a COMMIT it sent just
    before ``kill -9`` is applied by then, so what a test samples next is what it left."""
    deadline = time.monotonic() + timeout
    while node_sessions(pg_url, node_name):
        assert time.monotonic() < deadline, f"node {node_name}'s sessions still open"
        await asyncio.sleep(0.05)


def call_row(pg_url: str, call_id: int) -> tuple[str, str | None, str | None]:
    return one_row(pg_url, "SELECT state, end_reason, node FROM calls WHERE id = :id", id=call_id)


def agent_row(pg_url: str, username: str) -> tuple[str, str | None]:
    return one_row(
        pg_url,
        "SELECT s.state, s.node FROM agent_status s JOIN agents a ON a.id = s.agent_id"
        " WHERE a.username = :name",
        name=username,
    )


def db_rows(pg_url: str, query):
    engine = make_engine(pg_url)
    try:
        with transaction(make_sessionmaker(engine)) as s:
            return s.execute(query).all()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- outside


#: a contact the dialer has not finished with
OPEN = (m.ContactStatus.NEW, m.ContactStatus.DIALING, m.ContactStatus.NOT_ANSWERED)


def open_contacts(pg_url: str, campaign_id: int) -> int:
    q = select(func.count()).where(m.Contact.campaign_id == campaign_id, m.Contact.status.in_(OPEN))
    return db_rows(pg_url, q)[0][0]


async def ari_channels(sandbox) -> set[str]:
    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
        resp = await ari.get(f"{sandbox.ari_url}/ari/channels")
        resp.raise_for_status()
        return {ch["id"] for ch in resp.json()}


async def watch_agent_channels(
    sandbox, seen: dict[str, int], stop: asyncio.Event, doubles: list | None = None
) -> None:
    """The most channels each agent endpoint had at once in Asterisk, from ARI; and in
    ``doubles`` each sample where one had more: (time, that endpoint's channels as
    ``(id, state, creationtime)``), so that a failure names the legs (the dialer's
    ``cube-da-…`` ids, stored with the calls' agent legs)."""
    async with httpx.AsyncClient(auth=(ARI_USER, ARI_PASSWORD)) as ari:
        while not stop.is_set():
            resp = await ari.get(f"{sandbox.ari_url}/ari/channels")
            now: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
            # one entry per channel id: a listing once named the same channel three times
            # (Asterisk's container mid-change), which is one channel, not three
            listed = {ch["id"]: ch for ch in resp.json()}
            for ch in listed.values():
                name = re.match(r"PJSIP/(agent\d\d)-", ch["name"])
                if name:
                    now[name.group(1)].append((ch["id"], ch["state"], ch["creationtime"]))
            for agent, legs in now.items():
                seen[agent] = max(seen.get(agent, 0), len(legs))
                if len(legs) > 1 and doubles is not None:
                    doubles.append((dt.datetime.now(dt.UTC).isoformat(), agent, legs))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


def call_spans(messages: str) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """(first, last message, Call-ID) of every call in a SIPp message trace."""
    spans: dict[str, list[dt.datetime]] = {}
    parts = _BLOCK.split(messages)
    for stamp, body in zip(parts[1::2], parts[2::2], strict=True):
        found = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        if found:
            at = dt.datetime.fromisoformat(stamp)
            spans.setdefault(found.group(1), [at, at])[1] = at
    return sorted((first, last, cid) for cid, (first, last) in spans.items())


def overlaps(spans) -> list[tuple[str, str]]:
    return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]


def invites_by_number(messages: str) -> dict[str, set[str]]:
    """The calls (Call-IDs) each dialed number got, from a SIPp UAS message trace."""
    calls: dict[str, set[str]] = defaultdict(set)
    for body in _BLOCK.split(messages)[2::2]:
        number = re.search(r"^INVITE sip:(\+?\d+)@", body, re.M)
        cid = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        if number and cid:
            calls[number.group(1)].add(cid.group(1))
    return calls
