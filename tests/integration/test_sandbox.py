"""The sandbox Asterisk works as the other integration tests assume: ARI, AMI, PJSIP, SIPp calls."""

from __future__ import annotations

import asyncio
import re
import socket
import time

import httpx
import pytest
from panoramisk import Manager
from sippkit import caller, phone, read_stats

from asterisk_cube.sandbox_host import PASSWORD, USERNAME

pytestmark = pytest.mark.integration


def test_instance_is_running_on_its_ports(sandbox):
    status = sandbox.status()
    assert status["running"] is True
    assert status["ports"]["sip_udp"] == sandbox.base_port + 60
    assert "cube-test" in sandbox.rx("core show settings")  # its own asterisk.conf
    uptime = sandbox.rx("core show uptime")
    assert "System uptime" in uptime


def test_ari_answers_with_the_configured_credentials(sandbox):
    url = f"{sandbox.ari_url}/ari/asterisk/info"
    good = httpx.get(url, auth=(USERNAME, PASSWORD), timeout=5)
    assert good.status_code == 200
    assert "version" in good.json()["system"]
    bad = httpx.get(url, auth=(USERNAME, "wrong"), timeout=5)
    assert bad.status_code == 401
    env = sandbox.env()
    assert env["ASTERISK_CUBE_ARI_URL"] == sandbox.ari_url
    assert env["ASTERISK_CUBE_DIALPLAN_PATH"] == str(sandbox.dialplan_path)


async def test_ami_login_works_and_a_wrong_secret_is_refused(sandbox):
    manager = Manager(
        host="127.0.0.1", port=sandbox.ami_port, username=USERNAME, secret=PASSWORD, ping_delay=60
    )
    await asyncio.wait_for(manager.connect(), 5)
    try:
        pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        assert pong["Response"] == "Success"
    finally:
        manager.close()

    def raw_login(secret: str) -> str:
        with socket.create_connection(("127.0.0.1", sandbox.ami_port), timeout=5) as s:
            s.recv(200)  # banner
            s.sendall(f"Action: Login\r\nUsername: {USERNAME}\r\nSecret: {secret}\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(1000)
                if not chunk:
                    break
                data += chunk
            return data.decode()

    assert "Response: Error" in await asyncio.to_thread(raw_login, "wrong")
    assert "Response: Success" in await asyncio.to_thread(raw_login, PASSWORD)


def test_pjsip_has_the_agent_endpoints_and_the_carrier_trunk(sandbox):
    out = sandbox.rx("pjsip show endpoints")
    names = set(re.findall(r"Endpoint:\s+([^\s/<]+)", out))
    assert {f"agent{n:02d}" for n in range(1, 21)} <= names
    assert "carrier" in names
    assert f"127.0.0.1:{sandbox.agent_port(1)}/32" in out
    assert f"sip:agent01@127.0.0.1:{sandbox.agent_port(1)}" in out
    carrier = sandbox.rx("pjsip show endpoint carrier")
    assert "cube-inbound" in carrier
    assert f"127.0.0.1:{sandbox.carrier_ports[0]}/32" in carrier


def test_generated_dialplan_contexts_exist(sandbox):
    for context in ("cube-inbound", "cube-agents", "cube-fallback"):
        assert f"[ Context '{context}'" in sandbox.rx(f"dialplan show {context}")


TEST_DIALPLAN = """
[cube-inbound]
exten => 100,1,Answer()
 same => n,Set(GLOBAL(CUBE_TEST_CID)=${CALLERID(num)})
 same => n,Wait(0.5)
 same => n,Hangup()
exten => 101,1,Answer()
 same => n,Wait(30)
 same => n,Hangup()
exten => 102,1,Ringing()
 same => n,Wait(30)
 same => n,Hangup()
[cube-agents]
[cube-fallback]
"""


def test_sipp_call_on_the_carrier_is_answered_and_hung_up_by_asterisk(
    sandbox, test_dialplan, tmp_path
):
    test_dialplan(TEST_DIALPLAN)
    started = time.monotonic()
    result = caller(sandbox, "100", tmp_path / "uac", caller_id="0698765432", hold_ms=10000).run(
        timeout=20
    )
    assert result.ok, result.summary()
    assert result.successful == 1
    assert time.monotonic() - started < 5  # Asterisk hung up, not the caller after 10 s
    assert "CUBE_TEST_CID=0698765432" in sandbox.rx("dialplan show globals")


def test_sipp_caller_hangs_up_first(sandbox, test_dialplan, tmp_path):
    test_dialplan(TEST_DIALPLAN)
    result = caller(sandbox, "101", tmp_path / "uac", hold_ms=300, slot=1).run(timeout=20)
    assert result.ok, result.summary()
    assert "BYE sip:" in result.messages()


def test_sipp_caller_can_give_up_while_it_rings(sandbox, test_dialplan, tmp_path):
    test_dialplan(TEST_DIALPLAN)
    result = caller(sandbox, "102", tmp_path / "uac", cancel_after_ms=300, slot=2).run(timeout=20)
    assert result.ok, result.summary()
    assert "SIP/2.0 487" in result.messages()


def test_unknown_number_is_rejected(sandbox, test_dialplan, tmp_path):
    test_dialplan(TEST_DIALPLAN)
    result = caller(sandbox, "999", tmp_path / "uac", slot=3).run(timeout=20)
    assert not result.ok
    assert "404 Not Found" in result.errors()


async def test_ami_originate_reaches_the_agent_phone(sandbox, tmp_path):
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100) as agent:
        manager = Manager(
            host="127.0.0.1",
            port=sandbox.ami_port,
            username=USERNAME,
            secret=PASSWORD,
            ping_delay=60,
        )
        await asyncio.wait_for(manager.connect(), 5)
        try:
            reply = await asyncio.wait_for(
                manager.send_action(
                    {
                        "Action": "Originate",
                        "Channel": "PJSIP/agent01",
                        "Application": "Wait",
                        "Data": "0.3",
                        "Async": "true",
                        "Timeout": "5000",
                    }
                ),
                10,
            )
        finally:
            manager.close()
        replies = reply if isinstance(reply, list) else [reply]
        assert replies[0]["Response"] == "Success"
        assert any(r.get("Event") == "OriginateResponse" for r in replies), replies
        assert all(r.get("Response") == "Success" for r in replies), replies
        deadline = time.monotonic() + 5
        while agent.running() and time.monotonic() < deadline:
            if read_stats(agent.trace_dir / "stats.csv").get("SuccessfulCall(C)") == "1":
                break
            await asyncio.sleep(0.1)
        result = agent.stop()
    assert result.successful == 1, result.summary()
    assert result.count("IncomingCall(C)") == 1
    assert "INVITE sip:agent01@127.0.0.1" in result.messages()


def test_outbound_call_via_the_carrier_reaches_the_customer_phone(sandbox, tmp_path):
    port = sandbox.customer_ports[0]
    with phone(sandbox, port, tmp_path / "customer", answer_ms=100, talk_ms=300) as customer:
        sandbox.rx("channel originate PJSIP/0612345678@carrier application Wait 5")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "SIP/2.0 200 OK" not in (
            customer.trace_dir / "messages.log"
        ).read_text(errors="replace"):
            time.sleep(0.1)
        time.sleep(0.5)  # the phone hangs up after talk_ms
        result = customer.stop()
    assert result.successful == 1, result.summary()
    assert f"INVITE sip:0612345678@127.0.0.1:{port}" in result.messages()


def test_leftovers_of_an_earlier_test_are_cleared(sandbox, test_dialplan):
    """What a test leaves in the session's Asterisk (a call bridge, channels: its serve
    stopped with a call up) is cleared before the next test starts
    (sandbox_fixtures._sandbox_starts_clean): a later test's call 1 reuses the id
    ``cube-dial-1``, which ARI refuses to create again while it exists."""
    from sandbox_fixtures import clear_leftovers, leftovers

    test_dialplan("[leftover]\nexten => s,1,Answer()\n same => n,Wait(60)\n")
    auth, ari = (USERNAME, PASSWORD), f"{sandbox.ari_url}/ari"
    made = httpx.post(f"{ari}/bridges/cube-dial-1", params={"type": "mixing"}, auth=auth)
    assert made.status_code == 200, made.text
    again = httpx.post(f"{ari}/bridges/cube-dial-1", params={"type": "mixing"}, auth=auth)
    assert again.status_code == 409, again.text  # why a leftover broke the next test
    params = {"endpoint": "Local/s@leftover", "context": "leftover", "extension": "s"}
    assert httpx.post(f"{ari}/channels", params=params, auth=auth).status_code == 200
    deadline = time.monotonic() + 10
    while len(leftovers(sandbox)[0]) < 2:
        assert time.monotonic() < deadline, leftovers(sandbox)
        time.sleep(0.05)

    channels, bridges = clear_leftovers(sandbox)
    assert len(channels) == 2 and bridges == ["cube-dial-1"]
    assert leftovers(sandbox) == ([], [])
    assert "0 active channels" in sandbox.rx("core show channels")
