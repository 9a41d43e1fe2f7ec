"""Settings: one TOML file, overridden by environment variables, with embedded defaults.

Resolution order (later wins): built-in defaults -> the TOML file -> environment.
The file is ``--config PATH``, else ``$ASTERISK_CUBE_CONFIG``, else
``/etc/asterisk-cube/cube.toml`` if it exists. With no file at all the defaults
work: SQLite under the data directory and an Asterisk on localhost.

Every setting has an environment variable named ``ASTERISK_CUBE_<SECTION>_<KEY>``,
e.g. ``ASTERISK_CUBE_DATABASE_URL`` or ``ASTERISK_CUBE_ARI_PASSWORD``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asterisk_cube.core.nodes import default_name, name_problem
from asterisk_cube.core.text import control_problem
from asterisk_cube.core.trunk import sip_address_problem

DEFAULT_CONFIG_PATH = Path("/etc/asterisk-cube/cube.toml")
ENV_PREFIX = "ASTERISK_CUBE_"


class ConfigError(ValueError):
    """The configuration is unusable; the message names the setting."""


def default_data_dir() -> Path:
    env = os.environ.get(ENV_PREFIX + "DATA_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/asterisk-cube")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "asterisk-cube"


@dataclass
class DatabaseSettings:
    url: str = ""  # empty: sqlite file under the data dir


@dataclass
class AriSettings:
    url: str = "http://127.0.0.1:8088"
    username: str = "asterisk-cube"
    password: str = "asterisk-cube"
    app: str = "asterisk-cube"


@dataclass
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "asterisk-cube"
    secret: str = "asterisk-cube"


@dataclass
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    # a command's reply (Asterisk answers in milliseconds) is awaited this long, then the
    # session is closed; a route may give one command longer
    command_timeout: float = 10.0
    # open FastAGI sessions; at the cap a new one evicts the longest-waiting one (if it
    # has waited at least 1 s) or is refused
    max_sessions: int = 2048


@dataclass
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str = ""  # empty: generated once and kept under the data dir
    # The session cookie only over HTTPS (set it when a TLS proxy is in front): README.
    secure_cookie: bool = False
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks ("127.0.0.1", "10.0.0.0/8"); empty = none, not even localhost.
    trusted_proxies: str = ""
    # a connection gets this long to send a whole request header (slowloris)
    header_timeout: float = 10.0
    # ... and this long from the end of the header to send its whole body
    body_timeout: float = 30.0
    # open HTTP connections; at the cap a new one evicts the oldest without a request
    max_connections: int = 4096
    # password checks (argon2, 64 MiB and ~0.1 s of CPU each) run at most this many at
    # once, at most login_queue more wait; beyond that a login is refused at once (503)
    login_workers: int = 1
    login_queue: int = 8

    def proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]


@dataclass
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    username: str = ""
    password: str = ""
    sender: str = "asterisk-cube@localhost"
    starttls: bool = False


@dataclass
class DialplanSettings:
    # The file that extensions.conf includes with
    # ``#include /etc/asterisk/asterisk-cube.conf``.
    path: str = "/etc/asterisk/asterisk-cube.conf"
    # Dial string for outbound calls (dialer, forwards, missed-call callbacks);
    # {number} is replaced by the E.164 number without "+" unless kept.
    outbound_dial: str = "PJSIP/{number}@carrier"
    # Caller ID shown to a customer called back after a missed call (F-I7); empty = the
    # number of the line the customer called.
    callback_caller_id: str = ""
    # What a caller hears when the Stasis app cannot take the call (an
    # application run before hanging up, e.g. "Queue(support)" or
    # "VoiceMail(100@default,u)"; empty = an announcement only).
    fallback_application: str = ""
    fallback_announcement: str = "all-circuits-busy-now"


@dataclass
class WebrtcSettings:
    # The WebSocket URL the agents' browsers reach Asterisk's PJSIP on (its http.conf
    # server, path /ws), e.g. "wss://pbx.example.com:8089/ws"; empty: no browser phone.
    ws_url: str = ""
    # The browser phones' PJSIP config that `asterisk-cube webrtc install` writes
    # (include it from pjsip.conf).
    pjsip_path: str = "/etc/asterisk/pjsip_asterisk-cube.conf"
    # Where the DTLS certificate and key are made (once) and read by Asterisk from;
    # asterisk_cert_dir: the same directory as Asterisk sees it, if that differs (chroot).
    cert_dir: str = "/etc/asterisk/keys/asterisk-cube"
    asterisk_cert_dir: str = ""
    # An existing PJSIP transport (protocol ws/wss) to use; empty: the file defines one.
    transport: str = ""


@dataclass
class DialerSettings:
    """The outbound dialer's timings (seconds) and abandon message; docs/dialer.md."""

    # How often the pacing loop runs when nothing wakes it (an agent's state change does).
    step_interval: float = 0.1
    # How often running campaigns are re-read (start/pause/stop from the CLI take effect).
    reload_interval: float = 2.0
    # How often the day's abandon counts are re-read from the database.
    stats_interval: float = 2.0
    # How long a contact rings before the dial counts as not answered.
    ring_timeout: float = 25.0
    # Preview and callbacks: how long an agent's phone rings before the contact moves on.
    agent_ring_timeout: float = 20.0
    # The abandon rule: an answered contact with no agent within this long hears the
    # message and is hung up (2 s: Ofcom, FTC).
    abandon_seconds: float = 2.0
    # What the abandoned contact hears (an ARI media URI).
    abandon_message: str = "sound:asterisk-cube/formal/sorry"
    # The longest the abandon message may play before the line is hung up anyway.
    abandon_message_timeout: float = 15.0
    # Don't ring an agent's phone with less than this left of the abandon budget.
    min_agent_time: float = 0.5
    # An auto-answer phone given at least this long that did not answer is paused.
    fair_answer_time: float = 1.0
    # Learned ring and talk times are loaded at start from this many days of calls.
    history_days: int = 30


@dataclass
class MetricsSettings:
    """``GET /metrics`` (Prometheus); docs/operations.md."""

    # An inbound call answered within this many seconds of arriving meets the service level.
    service_level_seconds: float = 20.0
    # 0: /metrics on the web port only; else also on this port of http_host.
    http_port: int = 0
    http_host: str = "127.0.0.1"
    # the loop watchdog (loopwatch.py) logs the loop's stack when it stalls longer; 0: off
    loop_stall_ms: int = 500


@dataclass
class NodeSettings:
    """This ``serve``'s node in a center of several (docs/architecture.md, "Several nodes")."""

    # a short name unique among the serve processes sharing the database; empty: the host
    # name (its first label, as a slug)
    name: str = ""
    # host:port where the other nodes' Asterisks reach this node's Asterisk over SIP (the
    # inter-node trunk, docs/architecture.md "Cross-node bridging"); empty: no trunk
    sip_address: str = ""
    # the trunk's PJSIP config that `asterisk-cube dialplan install` writes (include it
    # from pjsip.conf)
    trunk_path: str = "/etc/asterisk/pjsip_asterisk-cube-nodes.conf"

    # how long the lease lasts after each renewal (renewed every third of it); a dead
    # node's work is taken over this long after its last renewal
    lease_seconds: float = 15.0


@dataclass
class DemoSettings:
    """The demo's test call (docs/demo.md): ``demo run`` sets these for its sandbox; a
    production config leaves ``test_call_did`` empty and the desk shows no Test call."""

    # the line a test call rings (its number); empty: no test call on this server
    test_call_did: str = ""
    # Asterisk's SIP host:port that takes carrier-trunk calls, and the local UDP port the
    # test caller sends from (one the trunk accepts)
    test_call_sip: str = ""
    test_call_port: int = 0
    # the caller's number
    test_call_from: str = "+4791234567"


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    ari: AriSettings = field(default_factory=AriSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    web: WebSettings = field(default_factory=WebSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    dialplan: DialplanSettings = field(default_factory=DialplanSettings)
    dialer: DialerSettings = field(default_factory=DialerSettings)
    webrtc: WebrtcSettings = field(default_factory=WebrtcSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    node: NodeSettings = field(default_factory=NodeSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    source: str = "defaults"  # where the settings came from, for `config show`

    @property
    def database_url(self) -> str:
        # absolute: a relative data dir must not turn into a refused relative SQLite URL
        return self.database.url or f"sqlite:///{(self.data_dir / 'cube.db').absolute()}"

    @property
    def node_name(self) -> str:
        """``[node] name``, else the one made from this host's name."""
        return self.node.name or default_name(socket.gethostname())

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data_dir"] = str(self.data_dir)
        out["database"]["url"] = self.database_url
        return out


_SECTIONS = (
    "database",
    "ari",
    "ami",
    "agi",
    "web",
    "smtp",
    "dialplan",
    "dialer",
    "webrtc",
    "metrics",
    "node",
    "demo",
)
#: ARI media URI schemes (the abandon message).
MEDIA_SCHEMES = ("sound:", "recording:", "tone:", "number:", "digits:", "characters:")
#: [dialer] second settings: (lowest, highest) accepted.
DIALER_RANGES: dict[str, tuple[float, float]] = {
    "step_interval": (0.01, 5.0),
    "reload_interval": (0.1, 600.0),
    "stats_interval": (0.1, 600.0),
    "ring_timeout": (1.0, 300.0),
    "agent_ring_timeout": (1.0, 300.0),
    "abandon_seconds": (0.5, 10.0),
    "abandon_message_timeout": (1.0, 300.0),
    "min_agent_time": (0.0, 10.0),
    "fair_answer_time": (0.0, 10.0),
    "history_days": (0, 366),
}


def _coerce(section: str, key: str, raw: Any, current: Any) -> Any:
    name = f"{section}.{key}"
    if isinstance(current, bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return raw.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if isinstance(current, int):
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ConfigError(f"{name} must be an integer, got {raw!r}")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if key == "port" and not 0 < value < 65536:
            raise ConfigError(f"{name} must be a port number 1-65535, got {value}")
        return value
    if isinstance(current, float):
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if isinstance(raw, bool) or not math.isfinite(number):
            raise ConfigError(f"{name} must be a number, got {raw!r}")
        return number
    if not isinstance(raw, str):
        raise ConfigError(f"{name} must be a string, got {raw!r}")
    problem = control_problem(raw)  # e.g. a line break in smtp.sender breaks every e-mail
    if problem:
        raise ConfigError(f"{name} {problem}")
    return raw


def _apply(settings: Settings, section: str, values: dict[str, Any], origin: str) -> None:
    target = getattr(settings, section)
    known = {f.name for f in dataclasses.fields(target)}
    for key, raw in values.items():
        if key not in known:
            raise ConfigError(f"{origin}: unknown setting {section}.{key}")
        setattr(target, key, _coerce(section, key, raw, getattr(target, key)))


def load_settings(
    path: str | os.PathLike | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Build the settings. Raises ConfigError with a message naming the bad setting."""
    env = dict(os.environ if env is None else env)
    settings = Settings()
    explicit = path or env.get(ENV_PREFIX + "CONFIG")
    file = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
    if explicit and not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    if file.is_file():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read it: {exc.strerror}") from None
        for section, values in data.items():
            if section == "data_dir":
                if not isinstance(values, str) or not values.strip():
                    raise ConfigError(f"{file}: data_dir must be a path (a string), got {values!r}")
                settings.data_dir = Path(values)
                continue
            if section not in _SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"{file}: unknown section [{section}]")
            _apply(settings, section, values, str(file))
        settings.source = str(file)
    if env.get(ENV_PREFIX + "DATA_DIR"):
        settings.data_dir = Path(env[ENV_PREFIX + "DATA_DIR"])
    for section in _SECTIONS:
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
        if values:
            _apply(settings, section, values, "environment")
    _check_dialer(settings.dialer)
    _check_web(settings.web)
    _check_webrtc(settings.webrtc)
    _check_limits(settings)
    _check_metrics(settings.metrics)
    _check_node(settings.node)
    _check_demo(settings.demo)
    return settings


def _check_node(node: NodeSettings) -> None:
    problem = node.name and name_problem(node.name)
    if problem:
        raise ConfigError(f"node.name {problem}")
    problem = node.sip_address and sip_address_problem(node.sip_address)
    if problem:
        raise ConfigError(f"node.sip_address {problem}, got {node.sip_address!r}")

    if not 3 <= node.lease_seconds <= 300:
        raise ConfigError(f"node.lease_seconds must be 3-300, got {node.lease_seconds}")


def _check_demo(demo: DemoSettings) -> None:
    if not demo.test_call_did:
        return
    from asterisk_cube.core.testcall import DemoCallError, from_settings

    target = from_settings(demo)
    assert target is not None  # test_call_did is set
    try:
        target.check()
    except DemoCallError as exc:
        raise ConfigError(f"demo.test_call_{exc.part}: {exc}") from None


def _check_metrics(metrics: MetricsSettings) -> None:
    if not 0 < metrics.service_level_seconds <= 3600:
        raise ConfigError(
            "metrics.service_level_seconds must be between 0 and 3600, "
            f"got {metrics.service_level_seconds:g}"
        )
    if not (metrics.http_port == 0 or 1 <= metrics.http_port <= 65535):
        raise ConfigError(f"metrics.http_port must be 0 (off) or 1-65535, got {metrics.http_port}")
    if not (metrics.loop_stall_ms == 0 or 20 <= metrics.loop_stall_ms <= 60000):
        raise ConfigError(
            f"metrics.loop_stall_ms must be 0 (off) or 20-60000, got {metrics.loop_stall_ms}"
        )


def _check_webrtc(webrtc: WebrtcSettings) -> None:
    from asterisk_cube.core.phones import check_ws_url

    problem = webrtc.ws_url and check_ws_url(webrtc.ws_url)
    if problem:
        raise ConfigError(f"webrtc.ws_url {problem}, got {webrtc.ws_url!r}")
    if webrtc.transport and not webrtc.transport.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(
            f"webrtc.transport must be a PJSIP section name, got {webrtc.transport!r}"
        )


def _check_web(web: WebSettings) -> None:
    for entry in web.proxy_list():
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"web.trusted_proxies: {entry!r} is not an IP address or network"
            ) from None


#: Limits against floods (issue #12): (section, key) -> (lowest, highest) accepted.
LIMIT_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("agi", "command_timeout"): (0.1, 3600.0),
    ("agi", "max_sessions"): (1, 100_000),
    ("web", "header_timeout"): (0.1, 300.0),
    ("web", "body_timeout"): (0.1, 3600.0),
    ("web", "max_connections"): (1, 1_000_000),
    ("web", "login_workers"): (1, 64),
    ("web", "login_queue"): (0, 10_000),
}


def _check_limits(settings: Settings) -> None:
    for (section, key), (low, high) in LIMIT_RANGES.items():
        value = getattr(getattr(settings, section), key)
        if not low <= value <= high:
            raise ConfigError(
                f"{section}.{key} must be between {low:g} and {high:g}, got {value:g}"
            )


def _check_dialer(d: DialerSettings) -> None:
    """Ranges and the settings that depend on each other, each error naming the setting."""
    for key, (low, high) in DIALER_RANGES.items():
        value = getattr(d, key)
        if not low <= value <= high:
            raise ConfigError(f"dialer.{key} must be between {low:g} and {high:g}, got {value:g}")
    if not d.abandon_message.startswith(MEDIA_SCHEMES):
        raise ConfigError(
            "dialer.abandon_message must be an ARI media URI such as "
            f"sound:asterisk-cube/formal/sorry, got {d.abandon_message!r}"
        )
    if d.min_agent_time >= d.abandon_seconds:
        raise ConfigError(
            f"dialer.min_agent_time ({d.min_agent_time:g}) must be less than "
            f"dialer.abandon_seconds ({d.abandon_seconds:g})"
        )


#: (section, key) of every setting that is a credential; ``config show`` masks them.
SECRET_SETTINGS = (
    ("ari", "password"),
    ("ami", "secret"),
    ("smtp", "password"),
    # anyone holding the session key can sign an admin session cookie offline
    ("web", "secret_key"),
)
MASK = "***"


def masked(settings: Settings) -> Settings:
    """A copy of ``settings`` fit to print: credentials replaced by ``***``, including
    the password inside ``database.url``."""
    from .redact import redact_url

    out = dataclasses.replace(
        settings, **{name: dataclasses.replace(getattr(settings, name)) for name in _SECTIONS}
    )
    for section, key in SECRET_SETTINGS:
        if getattr(getattr(out, section), key):
            setattr(getattr(out, section), key, MASK)
    out.database.url = redact_url(out.database.url)
    return out


def render_toml(settings: Settings) -> str:
    """The settings as a TOML file an admin can start from (``config show --toml``)."""
    lines = [f'data_dir = "{settings.data_dir}"', ""]
    for section in _SECTIONS:
        lines.append(f"[{section}]")
        for key, value in dataclasses.asdict(getattr(settings, section)).items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value}")
            else:
                escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'{key} = "{escaped}"')
        lines.append("")
    return "\n".join(lines)
