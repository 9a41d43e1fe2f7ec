"""Sandbox PBX: a real Asterisk from Debian sid, run from a chroot, for development, demo and tests.

One chroot is built once (debootstrap + apt-get) and any number of named *instances* run from
it, each with its own configuration, runtime directories and ports derived from a base port::

    SIP/UDP base+60   AMI base+38   HTTP/ARI base+88   FastAGI (ours) base+573   web (ours) base+80
    RTP base+1000..base+1999   SIPp carrier callers base+100..119
    SIPp customer phones base+150..159   SIPp agent phone NN (01..40) base+200+NN

Nothing here is needed on a real system: there the admin points asterisk-cube's configuration at the
existing Asterisk. See docs/sandbox.md.

The functions raise :class:`SandboxError` with a one-line message on any failure.
This module holds the instances; the chroot and host helpers are in
:mod:`asterisk_cube.sandbox_host`, the instance's Asterisk configuration in
:mod:`asterisk_cube.sandbox_config`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

from .core import trunk
from .sandbox_config import TRUNK_PJSIP, WEBRTC_PJSIP, empty_dialplan, render_config
from .sandbox_host import (
    AGENTS,
    CHROOT_ENV,
    PASSWORD,
    REPO_SOUNDS,
    STOCK_CONFIGS,
    USERNAME,
    Progress,
    SandboxError,
    _chroot_ids,
    _debian_directories,
    _info,
    _locked,
    _mount_runtime,
    _pid_alive,
    _port_free,
    _run,
    build,
    chroot_cmd,
    is_built,
    sandbox_root,
    unmount_all,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- instances

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class SandboxInstance:
    """A named Asterisk instance running from the shared sandbox chroot on its own ports."""

    name: str
    base_port: int
    root: Path | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise SandboxError(
                f"bad instance name {self.name!r}: use lower-case letters, digits, - and _"
            )
        if not 1024 <= self.base_port <= 65535 - 2000:
            raise SandboxError(f"bad base port {self.base_port}: use 1024..{65535 - 2000}")
        object.__setattr__(self, "root", Path(self.root) if self.root else sandbox_root())

    # ---- ports
    @property
    def ami_port(self) -> int:
        return self.base_port + 38

    @property
    def sip_port(self) -> int:
        return self.base_port + 60

    @property
    def web_port(self) -> int:
        return self.base_port + 80

    @property
    def http_port(self) -> int:
        return self.base_port + 88

    ari_port = http_port

    @property
    def agi_port(self) -> int:
        return self.base_port + 573

    @property
    def rtp_range(self) -> tuple[int, int]:
        return self.base_port + 1000, self.base_port + 1999

    @property
    def carrier_ports(self) -> range:
        """Ports SIPp callers on the carrier trunk send from."""
        return range(self.base_port + 100, self.base_port + 120)

    @property
    def customer_ports(self) -> range:
        """Ports of SIPp UAS "customer phones" that outbound calls via the carrier reach."""
        return range(self.base_port + 150, self.base_port + 160)

    def agent_port(self, number: int) -> int:
        """Port of the SIPp phone of agentNN (1..40)."""
        if not 1 <= number <= AGENTS:
            raise ValueError(f"agent number must be 1..{AGENTS}")
        return self.base_port + 200 + number

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        """PJSIP over WebSocket (browser phones): Asterisk's HTTP server, path /ws."""
        return f"ws://127.0.0.1:{self.http_port}/ws"

    # ---- paths (``inner`` = as Asterisk sees it inside the chroot, ``host`` = from outside)
    @property
    def inner_dir(self) -> str:
        return f"/srv/cube/{self.name}"

    @property
    def host_dir(self) -> Path:
        assert self.root is not None
        return self.root / self.inner_dir.lstrip("/")

    def host_path(self, inner: str) -> Path:
        assert self.root is not None
        return self.root / inner.lstrip("/")

    @property
    def inner_conf(self) -> str:
        return f"{self.inner_dir}/etc/asterisk.conf"

    @property
    def dialplan_path(self) -> Path:
        """Host-side path of the generated dialplan file that extensions.conf includes."""
        return self.host_dir / "etc" / "asterisk-cube.conf"

    @property
    def pid_file(self) -> Path:
        return self.host_dir / "run" / "asterisk.pid"

    @property
    def log_file(self) -> Path:
        return self.host_dir / "log" / "messages.log"

    def env(self) -> dict[str, str]:
        """Environment variables that point asterisk-cube at this instance."""
        return {
            "ASTERISK_CUBE_ARI_URL": self.ari_url,
            "ASTERISK_CUBE_ARI_USERNAME": USERNAME,
            "ASTERISK_CUBE_ARI_PASSWORD": PASSWORD,
            "ASTERISK_CUBE_AMI_HOST": "127.0.0.1",
            "ASTERISK_CUBE_AMI_PORT": str(self.ami_port),
            "ASTERISK_CUBE_AMI_USERNAME": USERNAME,
            "ASTERISK_CUBE_AMI_SECRET": PASSWORD,
            "ASTERISK_CUBE_AGI_HOST": "127.0.0.1",
            "ASTERISK_CUBE_AGI_PORT": str(self.agi_port),
            "ASTERISK_CUBE_WEB_HOST": "127.0.0.1",
            "ASTERISK_CUBE_WEB_PORT": str(self.web_port),
            "ASTERISK_CUBE_DIALPLAN_PATH": str(self.dialplan_path),
            # browser phones: plain ws on Asterisk's own HTTP port (loopback only;
            # docs/webrtc.md says why and what a real Asterisk uses instead)
            "ASTERISK_CUBE_WEBRTC_WS_URL": self.ws_url,
            "ASTERISK_CUBE_WEBRTC_PJSIP_PATH": str(self.host_dir / "etc" / WEBRTC_PJSIP),
            "ASTERISK_CUBE_WEBRTC_CERT_DIR": str(self.host_dir / "lib" / "keys" / "webrtc"),
            "ASTERISK_CUBE_WEBRTC_ASTERISK_CERT_DIR": f"{self.inner_dir}/lib/keys/webrtc",
            # where this Asterisk finds the prompts (inside the chroot): `doctor` reads it
            "ASTERISK_CUBE_SOUNDS_DIR": str(self.sounds_dir),
            # the inter-node trunk's PJSIP config, which pjsip.conf includes
            "ASTERISK_CUBE_NODE_TRUNK_PATH": str(self.trunk_path),
            # joined to a peer (`sandbox up --peer`): the other node reaches this one here
            **({"ASTERISK_CUBE_NODE_SIP_ADDRESS": self.sip_address} if self.peers() else {}),
        }

    @property
    def sip_address(self) -> str:
        """host:port where a peer's Asterisk reaches this one (the trunk)."""
        return f"127.0.0.1:{self.sip_port}"

    @property
    def trunk_path(self) -> Path:
        return self.host_dir / "etc" / TRUNK_PJSIP

    def _meta(self) -> dict:
        try:
            return dict(json.loads((self.host_dir / "instance.json").read_text()))
        except (OSError, ValueError):
            return {}

    def peers(self) -> dict[str, int]:
        """The instances this one is joined to by a trunk (name: base port)."""
        return {str(k): int(v) for k, v in (self._meta().get("peers") or {}).items()}

    def join(self, peer: SandboxInstance) -> None:
        """Join this instance and ``peer`` by a PJSIP trunk (both directions, the instance
        names as node names; `dialplan install` later rewrites it from the nodes table)
        and reload PJSIP in the running ones."""
        if peer.name == self.name or peer.base_port == self.base_port:
            raise SandboxError(f"instance {self.name!r} cannot be its own peer")
        for inst, other in ((self, peer), (peer, self)):
            meta = inst._meta() or {"name": inst.name, "base_port": inst.base_port}
            meta["peers"] = {**(meta.get("peers") or {}), other.name: other.base_port}
            (inst.host_dir / "instance.json").write_text(json.dumps(meta) + "\n")
            others = [
                trunk.Peer(
                    name,
                    trunk.parse_sip_address(SandboxInstance(name, base, self.root).sip_address),
                )
                for name, base in sorted(inst.peers().items())
            ]
            inst.trunk_path.write_text(trunk.render_pjsip(inst.name, others))
            if inst.is_running():
                inst.rx("module reload res_pjsip.so")

    @property
    def sounds_dir(self) -> Path:
        """The host path of the prompts this Asterisk plays (copied in by write_config)."""
        assert self.root is not None
        return self.root / "usr/share/asterisk/sounds/asterisk-cube"

    # ---- state
    def pid(self) -> int | None:
        """Pid of this instance's Asterisk if it is running (from its pid file, verified)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _pid_alive(pid):
            return None
        assert self.root is not None
        with contextlib.suppress(OSError):  # a recycled pid belongs to another root
            if os.readlink(f"/proc/{pid}/root") != str(Path(self.root).resolve()):
                return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "name": self.name,
            "running": pid is not None,
            "pid": pid,
            "built": is_built(self.root),
            "root": str(self.root),
            "config_dir": str(self.host_dir / "etc"),
            "base_port": self.base_port,
            "ports": {
                "sip_udp": self.sip_port,
                "ami": self.ami_port,
                "http_ari": self.http_port,
                "agi": self.agi_port,
                "web": self.web_port,
                "rtp": f"{self.rtp_range[0]}-{self.rtp_range[1]}",
                "carrier_callers": f"{self.carrier_ports[0]}-{self.carrier_ports[-1]}",
                "customer_phones": f"{self.customer_ports[0]}-{self.customer_ports[-1]}",
                "agent_phones": f"{self.agent_port(1)}-{self.agent_port(AGENTS)}",
            },
            "ari_url": self.ari_url,
            "peers": self.peers(),  # joined by a trunk (`sandbox up --peer`)
            "dialplan_path": str(self.dialplan_path),
            "log": str(self.log_file),
        }

    # ---- configuration
    def write_config(self, reset_dialplan: bool = False) -> None:
        """(Re)write the instance's config files. The generated dialplan file is kept unless
        missing or ``reset_dialplan``: ``asterisk-cube dialplan install`` owns it."""
        root = Path(self.root)  # type: ignore[arg-type]
        uid, gid = _chroot_ids(root)
        for sub in ("etc", "run", "spool", "log", "lib", "cache"):
            d = self.host_dir / sub
            d.mkdir(parents=True, exist_ok=True)
            if sub != "etc":
                os.chown(d, uid, gid)
        # ARI recordings (issue #17) go to <spool>/recording, which Asterisk does not create
        recordings = self.host_dir / "spool" / "recording"
        recordings.mkdir(exist_ok=True)
        os.chown(recordings, uid, gid)
        (self.host_dir / "lib" / "keys").mkdir(exist_ok=True)
        # the DTLS certificate of the browser phones, made once and read by Asterisk
        from asterisk_cube.webrtc import ensure_certificate

        ensure_certificate(self.host_dir / "lib" / "keys" / "webrtc", uid, gid)
        etc = self.host_dir / "etc"
        # Asterisk's group reads the generated files that hold passwords (mode 0640)
        os.chown(etc, 0, gid)
        # Modules whose package defaults are fine (AMD for the dialer, ConfBridge, CLI aliases).
        for name in STOCK_CONFIGS:
            stock = root / "etc/asterisk" / name
            if stock.is_file():
                shutil.copyfile(stock, etc / name)
        hosts = root / "etc/hosts"
        if not hosts.exists():
            hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        for name, text in render_config(self, _debian_directories(root)).items():
            (etc / name).write_text(text)
        if reset_dialplan or not self.dialplan_path.exists():
            self.dialplan_path.write_text(empty_dialplan())
        if reset_dialplan or not self.trunk_path.exists():  # the trunk is generated too
            self.trunk_path.write_text("")
        if REPO_SOUNDS.is_dir() and any(REPO_SOUNDS.iterdir()):
            target = root / "usr/share/asterisk/sounds/asterisk-cube"
            shutil.copytree(REPO_SOUNDS, target, dirs_exist_ok=True)
        meta = {"name": self.name, "base_port": self.base_port}
        if self.peers() and not reset_dialplan:
            meta["peers"] = self.peers()  # kept from `sandbox up --peer` until a reset
        (self.host_dir / "instance.json").write_text(json.dumps(meta) + "\n")

    # ---- control
    def rx(self, command: str, timeout: float = 15) -> str:
        """Run an Asterisk CLI command in this instance and return its output."""
        if not self.is_running():
            raise SandboxError(f"sandbox instance {self.name!r} is not running")
        proc = _run(
            chroot_cmd(Path(self.root), "asterisk", "-C", self.inner_conf, "-rx", command),  # type: ignore[arg-type]
            env=CHROOT_ENV,
            timeout=timeout,
            what=f"asterisk -rx {command!r}",
        )
        return proc.stdout

    def ari_ready(self, timeout: float = 1.0) -> bool:
        """True when ARI answers GET /ari/asterisk/info with this instance's credentials."""
        req = urllib.request.Request(f"{self.ari_url}/ari/asterisk/info")
        token = b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def up(
        self,
        timeout: float = 30,
        reset_dialplan: bool = False,
        progress: Progress | None = None,
    ) -> float:
        """Build the chroot if needed, write the config, start Asterisk and wait for ARI.

        Returns the seconds from starting Asterisk until ARI answered (0.0 if already running).
        """
        root = Path(self.root)  # type: ignore[arg-type]
        build(root, progress=progress)
        with _locked(root):
            if self.is_running():
                self.write_config(reset_dialplan=reset_dialplan)
                _info(progress, f"sandbox {self.name!r} already running (pid {self.pid()})")
                return 0.0
            busy = [p for p in (self.ami_port, self.http_port) if not _port_free(p)]
            if not _port_free(self.sip_port, socket.SOCK_DGRAM):
                busy.append(self.sip_port)
            if busy:
                raise SandboxError(
                    f"port {', '.join(map(str, busy))} already in use: pick another --base-port"
                )
            self.write_config(reset_dialplan=reset_dialplan)
            self.pid_file.unlink(missing_ok=True)
            _mount_runtime(root)
            started = time.monotonic()
            startup_log = self.host_dir / "log" / "startup.log"
            with startup_log.open("w") as out:
                proc = subprocess.run(
                    chroot_cmd(
                        root, "asterisk", "-U", "asterisk", "-G", "asterisk", "-C", self.inner_conf
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=CHROOT_ENV,
                    start_new_session=True,
                    timeout=30,
                )
            if proc.returncode != 0:
                self._unmount_if_idle()
                raise SandboxError(
                    f"asterisk did not start (exit {proc.returncode}); see {startup_log}"
                )
            deadline = started + timeout
            while not self.ari_ready():
                if time.monotonic() > deadline:
                    pid = self.pid()
                    if pid is not None:  # don't leave a half-working instance behind
                        self._stop(pid, 10, progress)
                    self._unmount_if_idle()
                    raise SandboxError(
                        f"ARI on {self.ari_url} did not answer within {timeout:.0f} s; "
                        f"see {self.log_file}"
                    )
                if time.monotonic() - started > 3 and not self.is_running():
                    self._unmount_if_idle()
                    raise SandboxError(f"asterisk exited during startup; see {self.log_file}")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        _info(progress, f"sandbox {self.name!r} up in {elapsed:.2f} s: ARI {self.ari_url}")
        return elapsed

    def down(self, timeout: float = 15, progress: Progress | None = None) -> float | None:
        """Stop this instance (``core stop now``, then its pid is killed if it lingers).

        Returns the seconds it took, or None if it was not running. Unmounts the chroot's
        proc and /dev when no other instance still runs from it.
        """
        root = Path(self.root)  # type: ignore[arg-type]
        pid = self.pid()
        elapsed = None if pid is None else self._stop(pid, timeout, progress)
        with _locked(root):
            self._unmount_if_idle()
        if elapsed is None:
            _info(progress, f"sandbox {self.name!r} is not running")
        else:
            _info(progress, f"sandbox {self.name!r} stopped in {elapsed:.2f} s")
        return elapsed

    def _stop(self, pid: int, timeout: float, progress: Progress | None) -> float:
        """Stop the Asterisk with ``pid`` (this instance's); no lock taken."""
        started = time.monotonic()
        with contextlib.suppress(SandboxError):
            self.rx("core stop now", timeout=10)
        deadline = started + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _pid_alive(pid):
                break
            _info(progress, f"asterisk pid {pid} still alive, sending {sig.name}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            end = time.monotonic() + 5
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
        if _pid_alive(pid):
            raise SandboxError(f"asterisk pid {pid} did not stop")
        self.pid_file.unlink(missing_ok=True)
        return time.monotonic() - started

    def _unmount_if_idle(self) -> None:
        """Unmount proc and /dev from the chroot if no instance runs from it (lock held)."""
        root = Path(self.root)  # type: ignore[arg-type]
        if any(inst.is_running() for inst in list_instances(root)):
            return
        if is_built(root):
            unmount_all(root)


def list_instances(root: Path | None = None) -> list[SandboxInstance]:
    """Instances that have been configured in the chroot (running or not)."""
    root = root or sandbox_root()
    found = []
    for meta in sorted((root / "srv/cube").glob("*/instance.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, SandboxError):
            data = json.loads(meta.read_text())
            found.append(SandboxInstance(data["name"], int(data["base_port"]), root))
    return found


def find_instance(name: str, root: Path | None = None) -> SandboxInstance | None:
    """A configured instance by name (to learn its base port), or None."""
    return next((i for i in list_instances(root) if i.name == name), None)
