"""The sandbox instance's Asterisk configuration files (pjsip with its SIPp carrier, customer
and agent endpoints, http/ari/manager, modules, an empty dialplan), rendered from its ports.
Development only, like :mod:`asterisk_cube.sandbox`.
"""

from __future__ import annotations

from typing import Protocol

from .sandbox_host import AGENTS, CONTEXTS, PASSWORD, USERNAME

WEBRTC_PJSIP = "pjsip_asterisk-cube.conf"  # `asterisk-cube webrtc install` writes it
TRUNK_PJSIP = "pjsip_asterisk-cube-nodes.conf"  # `dialplan install` / `sandbox up --peer`

# --------------------------------------------------------------------------- config files


class Instance(Protocol):
    """What the configuration needs of a :class:`asterisk_cube.sandbox.SandboxInstance`
    (a protocol: that module imports this one)."""

    @property
    def name(self) -> str: ...
    @property
    def inner_dir(self) -> str: ...
    @property
    def sip_port(self) -> int: ...
    @property
    def http_port(self) -> int: ...
    @property
    def ami_port(self) -> int: ...
    @property
    def rtp_range(self) -> tuple[int, int]: ...
    @property
    def carrier_ports(self) -> range: ...
    @property
    def customer_ports(self) -> range: ...
    def agent_port(self, number: int) -> int: ...


def empty_dialplan() -> str:
    lines = [
        "; asterisk-cube generated dialplan (sandbox placeholder).",
        "; `asterisk-cube dialplan install` overwrites this file and reloads the dialplan.",
    ]
    for ctx in CONTEXTS:
        lines += ["", f"[{ctx}]"]
    return "\n".join(lines) + "\n"


def render_config(inst: Instance, debian_dirs: dict[str, str]) -> dict[str, str]:
    """The Asterisk config files of one instance, by file name."""
    d = inst.inner_dir
    rtp_start, rtp_end = inst.rtp_range
    files: dict[str, str] = {}
    files["asterisk.conf"] = f"""\
; asterisk-cube sandbox instance {inst.name!r} (generated on every `sandbox up`)
[directories]
astcachedir => {d}/cache
astetcdir => {d}/etc
astmoddir => {debian_dirs["astmoddir"]}
astvarlibdir => {d}/lib
astdbdir => {d}/lib
astkeydir => {d}/lib
astdatadir => {debian_dirs["astdatadir"]}
astagidir => {debian_dirs["astagidir"]}
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astsbindir => {debian_dirs["astsbindir"]}

[options]
systemname = cube-{inst.name}
defaultlanguage = en
hideconnect = yes
maxfiles = 8192
"""
    files["modules.conf"] = """\
[modules]
autoload = yes
; not needed in the sandbox and slow or noisy to load
noload = chan_sip.so
noload = chan_iax2.so
noload = chan_skinny.so
noload = chan_unistim.so
noload = chan_mgcp.so
noload = chan_motif.so
noload = res_xmpp.so
noload = chan_dahdi.so
noload = chan_console.so
noload = chan_alsa.so
noload = chan_oss.so
noload = cdr_csv.so
noload = cdr_custom.so
noload = cdr_manager.so
noload = cdr_sqlite3_custom.so
noload = cdr_pgsql.so
noload = cdr_odbc.so
noload = cdr_adaptive_odbc.so
noload = cdr_tds.so
noload = cdr_radius.so
noload = cdr_syslog.so
noload = cel_custom.so
noload = cel_manager.so
noload = cel_sqlite3_custom.so
noload = cel_pgsql.so
noload = cel_odbc.so
noload = cel_tds.so
noload = cel_radius.so
noload = res_config_odbc.so
noload = res_config_pgsql.so
noload = res_config_ldap.so
noload = res_config_mysql.so
noload = res_config_sqlite3.so
noload = res_config_curl.so
noload = res_odbc.so
noload = res_odbc_transaction.so
noload = res_pjsip_phoneprov_provider.so
noload = res_phoneprov.so
noload = res_snmp.so
noload = res_smdi.so
noload = res_calendar.so
noload = res_calendar_caldav.so
noload = res_calendar_ews.so
noload = res_calendar_exchange.so
noload = res_calendar_icalendar.so
noload = res_statsd.so
noload = res_hep.so
noload = res_hep_pjsip.so
noload = res_hep_rtcp.so
noload = res_prometheus.so
noload = res_pjsip_notify.so
noload = res_stir_shaken.so
noload = res_geolocation.so
noload = res_aeap.so
noload = res_speech_aeap.so
noload = pbx_dundi.so
noload = pbx_lua.so
noload = pbx_ael.so
noload = pbx_realtime.so
noload = app_voicemail.so
noload = app_voicemail_imap.so
noload = app_voicemail_odbc.so
noload = app_minivm.so
noload = app_festival.so
noload = app_jack.so
noload = app_followme.so
noload = app_alarmreceiver.so
noload = app_agent_pool.so
noload = app_adsiprog.so
noload = app_getcpeid.so
noload = res_adsi.so
noload = res_resolver_unbound.so
noload = func_odbc.so
noload = res_pjsip_stir_shaken.so
noload = res_pjsip_geolocation.so
"""
    files["logger.conf"] = """\
[general]
dateformat = %F %T.%3q

[logfiles]
console => notice,warning,error
messages.log => notice,warning,error,verbose(3)
"""
    files["http.conf"] = f"""\
[general]
enabled = yes
bindaddr = 127.0.0.1
bindport = {inst.http_port}
"""
    files["ari.conf"] = f"""\
[general]
enabled = yes
pretty = no

[{USERNAME}]
type = user
read_only = no
password = {PASSWORD}
"""
    files["manager.conf"] = f"""\
[general]
enabled = yes
bindaddr = 127.0.0.1
port = {inst.ami_port}

[{USERNAME}]
secret = {PASSWORD}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
writetimeout = 5000
"""
    files["rtp.conf"] = f"""\
[general]
rtpstart = {rtp_start}
rtpend = {rtp_end}
"""
    files["musiconhold.conf"] = """\
[general]

[default]
mode = files
directory = moh
"""
    files["extensions.conf"] = f"""\
[general]
static = yes
writeprotect = yes
clearglobalvars = no

[globals]

; The dialplan asterisk-cube generates (`asterisk-cube dialplan install` writes it).
; On a real Asterisk the admin adds the same kind of #include to /etc/asterisk/extensions.conf.
#include "{d}/etc/asterisk-cube.conf"
"""
    files["pjsip.conf"] = render_pjsip(inst)
    # Quiet defaults for modules that complain without a file.
    for name in (
        "cel.conf",
        "ccss.conf",
        "udptl.conf",
        "features.conf",
        "res_parking.conf",
        "res_stun_monitor.conf",
        "res_http_media_cache.conf",
    ):
        files[name] = "[general]\n"
    for name in (
        "acl.conf",
        "pjproject.conf",
        "pjsip_wizard.conf",
        "websocket_client.conf",
        "chan_websocket.conf",
    ):
        files[name] = ""
    files["queues.conf"] = "[general]\npersistentmembers = no\n"
    files["cdr.conf"] = "[general]\nenable = no\n"
    files["stasis.conf"] = ""
    files["indications.conf"] = """\
[general]
country = us

[us]
description = United States / North America
ringcadence = 2000,4000
dial = 350+440
busy = 480+620/500,0/500
ring = 440+480/2000,0/4000
congestion = 480+620/250,0/250
callwaiting = 440/300,0/10000
dialrecall = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440
record = 1400/500,0/15000
info = !950/330,!1400/330,!1800/330,0
stutter = !350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440
"""
    return files


def render_pjsip(inst: Instance) -> str:
    """PJSIP: one UDP transport, agent01..agent40 on fixed SIPp ports, and a carrier trunk."""
    out = [
        f"""\
; asterisk-cube sandbox {inst.name!r}: every phone is SIPp on 127.0.0.1, told apart by port.
[global]
type = global
user_agent = asterisk-cube-sandbox

[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:{inst.sip_port}

[cube-phone](!)
type = endpoint
transport = transport-udp
disallow = all
allow = ulaw,alaw
direct_media = no
send_connected_line = no
rtp_symmetric = yes
rewrite_contact = no
language = en

; Carrier trunk: calls from the SIPp callers
; (ports {inst.carrier_ports[0]}-{inst.carrier_ports[-1]}) enter cube-inbound;
; PJSIP/<number>@carrier reaches the SIPp customer phone on {inst.customer_ports[0]}.
[carrier](cube-phone)
context = cube-inbound
aors = carrier
trust_id_inbound = yes
trust_id_outbound = yes
from_user = carrier

[carrier]
type = aor
contact = sip:127.0.0.1:{inst.customer_ports[0]}

[carrier]
type = identify
endpoint = carrier
"""
    ]
    out += [f"match = 127.0.0.1:{p}/32\n" for p in [*inst.carrier_ports, *inst.customer_ports]]
    out.append(
        "\n; Browser phones (WebRTC over ws://127.0.0.1:HTTP/ws), written by "
        "`asterisk-cube webrtc install`\n"
        f'#tryinclude "{inst.inner_dir}/etc/{WEBRTC_PJSIP}"\n'
        "\n; The trunk to other nodes' Asterisks (`sandbox up --peer`, `dialplan install`)\n"
        f'#tryinclude "{inst.inner_dir}/etc/{TRUNK_PJSIP}"\n'
    )
    for n in range(1, AGENTS + 1):
        agent = f"agent{n:02d}"
        port = inst.agent_port(n)
        out.append(
            f"""
[{agent}](cube-phone)
context = cube-agents
aors = {agent}
callerid = Agent {n:02d} <{agent}>

[{agent}]
type = aor
contact = sip:{agent}@127.0.0.1:{port}

[{agent}]
type = identify
endpoint = {agent}
match = 127.0.0.1:{port}/32
"""
        )
    return "".join(out)
