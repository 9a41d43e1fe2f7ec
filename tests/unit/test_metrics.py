"""GET /metrics (issue #15): prometheus_client exposition read from serve's held state,
and the shipped Grafana dashboard only queries metrics the product exports."""

import asyncio
import json
import re
from importlib import resources

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.web.app import create_app


@pytest.fixture
def runtime(tmp_path):
    from asterisk_cube import wiring

    settings = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path)})
    upgrade(settings.database_url)
    from asterisk_cube.db.session import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as s:
        p.add_line(s, "4721000000", "Support")
        p.add_agent(s, "kari", "Kari", endpoint="PJSIP/kari", lines=["4721000000"])
    return wiring.build_runtime(settings, install_signal_handlers=False)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(state) -> str:
    app = create_app(state.settings, state)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


async def test_metrics_show_waiting_calls_agents_and_the_process(runtime):
    state = runtime.state
    distributor = state.extras["distributor"]
    with transaction(distributor.sessions) as s:
        line = s.scalar(select(m.Line)).id
        agent = s.scalar(select(m.Agent)).id
    await distributor.login(agent)
    distributor.call_arrived("ch-1", line, "+4791000001")
    distributor.call_arrived("ch-2", line, "+4791000002")
    await asyncio.sleep(0.05)  # older than 0 s
    got = samples(await scrape(state))
    assert got[("asterisk_cube_inbound_calls_waiting", (("line", "4721000000"),))] == 2
    assert got[("asterisk_cube_inbound_oldest_wait_seconds", (("line", "4721000000"),))] > 0
    # the agent logged in but did not choose ready: paused or logged in, counted once
    agents = {k[1]: v for k, v in got.items() if k[0] == "asterisk_cube_agents"}
    assert sum(agents.values()) == 1
    journal = got[("asterisk_cube_journal_pending", ())]
    assert journal + got[("asterisk_cube_journal_written_total", ())] >= 2  # queued or written
    assert got[("asterisk_cube_ari_connected", ())] == 0  # nothing connected in a unit test
    assert got[("asterisk_cube_ami_connected", ())] == 0
    assert got[("asterisk_cube_ready", ())] == 0
    assert got[("asterisk_cube_check_ok", (("check", "started"),))] == 0
    assert got[("asterisk_cube_check_ok", (("check", "database"),))] == 1
    assert ("asterisk_cube_journal_flush_seconds_count", ()) in got
    assert ("asterisk_cube_event_loop_lag_seconds_count", ()) in got
    await distributor.close()


async def test_journal_flush_and_loop_lag_are_observed(runtime):
    state = runtime.state
    metrics = state.extras["metrics"]
    distributor = state.extras["distributor"]
    with transaction(distributor.sessions) as s:
        line = s.scalar(select(m.Line)).id
    distributor.call_arrived("ch-1", line, "+4791000001")
    await distributor.journal.drain()
    lag = asyncio.create_task(runtime.extra_components["loop-lag"](state))
    got = {}
    for _ in range(200):  # until the first lag sample is in (interval 0.5 s)
        got = samples(metrics.exposition().decode())
        if got[("asterisk_cube_event_loop_lag_seconds_count", ())] >= 1:
            break
        await asyncio.sleep(0.05)
    lag.cancel()
    assert got[("asterisk_cube_event_loop_lag_seconds_count", ())] >= 1
    assert got[("asterisk_cube_journal_flush_seconds_count", ())] >= 1
    await distributor.close()


def exported_names(state) -> set[str]:
    """Every series name serve exports: every family is listed even when it has no
    sample yet (no campaign running), with the suffixes Prometheus queries use."""
    text = state.extras["metrics"].exposition().decode()
    names = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {family.name + s for s in suffixes.get(family.type, ())}
    return names


def test_every_grafana_panel_queries_an_exported_metric(runtime):
    dashboard = json.loads(
        resources.files("asterisk_cube").joinpath("ops/grafana-dashboard.json").read_text()
    )
    names = exported_names(runtime.state)
    assert "asterisk_cube_dialer_abandon_rate" in names  # listed without a campaign
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    assert panels
    titles = set()
    for panel in panels:
        exprs = [t["expr"] for t in panel.get("targets", [])]
        assert exprs, f"panel {panel['title']!r} has no query"
        for expr in exprs:
            used = set(re.findall(r"\basterisk_cube_\w+", expr))
            assert used, f"panel {panel['title']!r}: {expr!r} names no asterisk_cube metric"
            unknown = used - names
            assert not unknown, f"panel {panel['title']!r} queries unknown metrics {unknown}"
        titles.add(panel["title"])
    assert len(titles) == len(panels)
    rows = {p["title"] for p in dashboard["panels"] if p.get("type") == "row"}
    assert rows == {"Queues", "Agents", "Dialer", "Process health"}


async def test_metrics_on_their_own_port(runtime, unused_tcp_port):
    from asterisk_cube.metrics import metrics_server

    metrics = runtime.state.extras["metrics"]
    server = asyncio.create_task(metrics_server(metrics, "127.0.0.1", unused_tcp_port))
    url = f"http://127.0.0.1:{unused_tcp_port}/metrics"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):  # until uvicorn listens
                try:
                    resp = await client.get(url)
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert resp.status_code == 200
            assert "asterisk_cube_ready" in resp.text
            assert (await client.get(url.replace("/metrics", "/health"))).status_code == 404
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    await runtime.state.extras["distributor"].close()


def test_the_dialers_timing_histograms_are_exported(runtime):
    dialer = runtime.state.extras["dialer"]
    dialer.connect_delays.observe(0.12)
    names = exported_names(runtime.state)
    for name in ("connect", "agent_answer", "abandon_wait", "step"):
        assert f"asterisk_cube_dialer_{name}_seconds_bucket" in names
    got = samples(runtime.state.extras["metrics"].exposition().decode())
    assert got[("asterisk_cube_dialer_connect_seconds_count", ())] == 1
