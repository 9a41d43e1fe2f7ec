"""Sandbox PBX: a real Asterisk from Debian sid, run from a chroot, for development, demo and tests.

One chroot is built once (debootstrap + apt-get) and any number of named *instances* run from
it, each with its own configuration, runtime directories and ports derived from a base port::

    SIP/UDP base+60   AMI base+38   HTTP/ARI base+88   FastAGI (ours) base+573   web (ours) base+80
    RTP base+1000..base+1999   SIPp carrier callers base+100..119
    SIPp customer phones base+150..159   SIPp agent phone NN (01..40) base+200+NN

Nothing here is needed on a real system: there the admin points asterisk-cube's configuration at the
existing Asterisk. See docs/sandbox.md.

The functions raise :class:`SandboxError` with a one-line message on any failure.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/var/lib/asterisk-cube/sandbox/root")
ROOT_ENV = "ASTERISK_CUBE_SANDBOX_ROOT"
SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm")
HOST_TOOLS = {"debootstrap": "debootstrap", "sipp": "sip-tester"}
MARKER = ".asterisk-cube-sandbox"  # written last into a finished chroot
USERNAME = "asterisk-cube"
PASSWORD = "asterisk-cube"
AGENTS = 40  # the dialer end-to-end test runs 32 agents (three campaigns of 200+)
STOCK_CONFIGS = ("amd.conf", "confbridge.conf", "cli_aliases.conf")
CONTEXTS = ("cube-inbound", "cube-agents", "cube-fallback")
CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}
REPO_SOUNDS = Path(__file__).resolve().parent.parent / "sounds"

Progress = Callable[[str], None]


class SandboxError(RuntimeError):
    """The sandbox could not do what was asked; the message says why in one line."""


def sandbox_root() -> Path:
    """The chroot directory: $ASTERISK_CUBE_SANDBOX_ROOT or /var/lib/asterisk-cube/sandbox/root."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _info(progress: Progress | None, message: str) -> None:
    log.info("%s", message)
    if progress:
        progress(message)


def _run(
    cmd: list[str],
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    what: str | None = None,
    output: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise SandboxError with the tail of its output when it fails."""
    what = what or cmd[0]
    try:
        if output is not None:
            with output.open("a") as out:
                out.write(f"\n$ {' '.join(cmd)}\n")
                out.flush()
                proc = subprocess.run(
                    cmd, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env
                )
            tail = output.read_text(errors="replace")[-600:]
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            tail = (proc.stderr or proc.stdout or "")[-600:]
    except FileNotFoundError:
        raise SandboxError(f"{what}: command not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise SandboxError(f"{what}: timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        last = " | ".join(line for line in tail.strip().splitlines()[-3:] if line.strip())
        raise SandboxError(f"{what} failed (exit {proc.returncode}): {last or 'no output'}")
    return proc


# --------------------------------------------------------------------------- host side helpers


def debian_mirror(
    sources_dir: Path = Path("/etc/apt/sources.list.d"),
    sources_list: Path = Path("/etc/apt/sources.list"),
) -> str:
    """The Debian archive URL this machine's apt uses (never hard-coded: mirrors differ per site).

    Looks at deb822 ``*.sources`` files (``URIs:`` of a Debian ``Types: deb`` stanza that is not
    the security archive), then at one-line ``deb URL suite ...`` entries.
    """
    candidates: list[str] = []  # Debian archive URIs, in the order apt lists them
    for file in sorted(sources_dir.glob("*.sources")) if sources_dir.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", file.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = fields.get("suites", "").split()
            if suites and all(s.endswith("-security") for s in suites):
                continue
            uris = fields.get("uris", "").split()
            if "debian-archive-keyring" in fields.get("signed-by", ""):
                candidates += uris
            else:
                candidates += [u for u in uris if "debian" in u]
    files = [sources_list] if sources_list.is_file() else []
    files += sorted(sources_dir.glob("*.list")) if sources_dir.is_dir() else []
    for file in files:
        for line in file.read_text(errors="replace").splitlines():
            parts = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(parts) < 3 or parts[0] != "deb" or parts[2].endswith("-security"):
                continue
            if "debian" in parts[1]:
                candidates.append(parts[1])
    for uri in candidates:
        if "security" not in uri and "debian-ports" not in uri:
            return uri.rstrip("/")
    raise SandboxError(
        "no Debian mirror found in /etc/apt/sources.list{,.d}: cannot build the sandbox chroot"
    )


def ensure_host_tools(*tools: str, progress: Progress | None = None) -> None:
    """Install the Debian packages providing ``tools`` (debootstrap, sipp) if they are missing."""
    missing = [HOST_TOOLS[t] for t in tools if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SandboxError(f"missing {', '.join(missing)}: install as root (apt-get install ...)")
    _info(progress, f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    try:
        _run(install, env=env, timeout=600, what="apt-get install")
    except SandboxError:
        _run(["apt-get", "update", "-q"], env=env, timeout=600, what="apt-get update")
        _run(install, env=env, timeout=600, what="apt-get install")


def _mountinfo() -> list[str]:
    """Mount points of this process's namespace, unescaped."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point))
    return points


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first (the order to unmount them in)."""
    base = str(path.resolve()) if path.exists() else str(path)
    found = [Path(p) for p in _mountinfo() if p == base or p.startswith(base.rstrip("/") + "/")]
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _mount_runtime(root: Path) -> None:
    """Mount proc and bind /dev into the chroot unless they already are (shared by instances)."""
    mounted = set(mounts_under(root))
    if root / "proc" not in mounted:
        _run(["mount", "-t", "proc", "proc", str(root / "proc")], what="mount proc")
    if root / "dev" not in mounted:
        _run(["mount", "--bind", "/dev", str(root / "dev")], what="bind-mount /dev")


def unmount_all(root: Path) -> None:
    """Unmount everything below ``root`` (lazily if busy); raise if something stays mounted."""
    for point in mounts_under(root):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
    left = mounts_under(root)
    if left:
        raise SandboxError(f"could not unmount {', '.join(map(str, left))}")


def chrooted_pids(path: Path) -> list[int]:
    """Processes whose root directory is ``path`` (or below it)."""
    base = str(path.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            root = os.readlink(entry / "root")
        except OSError:
            continue
        if root == base or root.startswith(base + "/"):
            found.append(int(entry.name))
    return found


def _safe_rmtree(path: Path) -> None:
    """Delete a chroot directory, but never through a mount (a bound /dev!).

    Processes still running inside it (e.g. an apt-get orphaned by a killed build) are killed
    first: they were started by an earlier build of this sandbox."""
    for pid in chrooted_pids(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while chrooted_pids(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    unmount_all(path)
    if mounts_under(path):  # pragma: no cover - unmount_all raised already
        raise SandboxError(f"refusing to delete {path}: something is mounted below it")
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise building, mounting and unmounting across processes (tests, demo, CLI)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- the chroot


def is_built(root: Path | None = None) -> bool:
    root = root or sandbox_root()
    return (root / MARKER).is_file() and (root / "usr/sbin/asterisk").is_file()


def chroot_cmd(root: Path, *args: str) -> list[str]:
    return ["chroot", str(root), *args]


def build(root: Path | None = None, progress: Progress | None = None) -> float | None:
    """Build the chroot once. Returns the seconds it took, or None if it was already built.

    The chroot is built in a sibling temp directory and renamed into place when complete, so a
    half-built tree never looks built; a file lock keeps two processes from building at once.
    """
    root = root or sandbox_root()
    if is_built(root):
        return None
    if os.geteuid() != 0:
        raise SandboxError("building the sandbox needs root (debootstrap, chroot, mount)")
    ensure_host_tools("debootstrap", progress=progress)
    mirror = debian_mirror()
    with _locked(root):
        if is_built(root):  # another process finished it while we waited for the lock
            return None
        if root.exists() and any(root.iterdir()):
            raise SandboxError(f"{root} exists but is not a finished sandbox; remove it first")
        for stale in root.parent.glob(f".{root.name}.build-*"):
            _info(progress, f"removing unfinished build {stale}")
            _safe_rmtree(stale)
        started = time.monotonic()
        tmp = root.parent / f".{root.name}.build-{os.getpid()}"
        tmp.mkdir(parents=True)
        build_log = root.parent / "build.log"
        build_log.write_text(f"asterisk-cube sandbox build, mirror {mirror}\n")
        try:
            _info(progress, f"debootstrap {SUITE} from {mirror} (about 30 s; log {build_log})")
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=ca-certificates",
                    SUITE,
                    str(tmp),
                    mirror,
                ],
                timeout=1800,
                what="debootstrap",
                output=build_log,
            )
            # Keep package scripts from starting services inside the chroot.
            policy = tmp / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            _mount_runtime(tmp)
            apt = ["apt-get", "-q", "-o", "Acquire::Check-Valid-Until=false"]
            _info(progress, f"installing {' '.join(PACKAGES)} in the chroot (about 20 s)")
            _run(
                chroot_cmd(tmp, *apt, "update"),
                env=CHROOT_ENV,
                timeout=900,
                what="apt-get update (chroot)",
                output=build_log,
            )
            _run(
                chroot_cmd(tmp, *apt, "install", "-y", "--no-install-recommends", *PACKAGES),
                env=CHROOT_ENV,
                timeout=1800,
                what="apt-get install (chroot)",
                output=build_log,
            )
            _run(chroot_cmd(tmp, "apt-get", "clean"), env=CHROOT_ENV, what="apt-get clean")
            version = _run(
                chroot_cmd(tmp, "asterisk", "-V"), env=CHROOT_ENV, what="asterisk -V"
            ).stdout.strip()
            unmount_all(tmp)
            (tmp / MARKER).write_text(
                json.dumps(
                    {
                        "suite": SUITE,
                        "mirror": mirror,
                        "packages": list(PACKAGES),
                        "asterisk": version,
                        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    },
                    indent=2,
                )
                + "\n"
            )
            if root.exists():
                root.rmdir()  # an empty directory someone created in advance
            tmp.rename(root)
        except BaseException:
            with contextlib.suppress(SandboxError):
                _safe_rmtree(tmp)
            raise
        elapsed = time.monotonic() - started
        _info(progress, f"sandbox chroot built in {elapsed:.1f} s: {root} ({version})")
        return elapsed


def _chroot_ids(root: Path, user: str = "asterisk") -> tuple[int, int]:
    """uid/gid of a user of the chroot (not the host's: the ids may differ)."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise SandboxError(f"user {user} missing in the sandbox chroot {root}")


def _debian_directories(root: Path) -> dict[str, str]:
    """The [directories] of the package's own asterisk.conf (module path is arch-specific)."""
    dirs = {
        "astmoddir": "/usr/lib/asterisk/modules",
        "astdatadir": "/usr/share/asterisk",
        "astagidir": "/usr/share/asterisk/agi-bin",
        "astsbindir": "/usr/sbin",
    }
    conf = root / "etc/asterisk/asterisk.conf"
    if conf.is_file():
        for line in conf.read_text(errors="replace").splitlines():
            m = re.match(r"\s*(ast\w+dir)\s*=>?\s*(\S+)", line)
            if m and m.group(1) in dirs:
                dirs[m.group(1)] = m.group(2)
    return dirs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


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
            # where this Asterisk finds the prompts (inside the chroot): `doctor` reads it
            "ASTERISK_CUBE_SOUNDS_DIR": str(self.sounds_dir),
        }

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
        (self.host_dir / "lib" / "keys").mkdir(exist_ok=True)
        etc = self.host_dir / "etc"
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
        if REPO_SOUNDS.is_dir() and any(REPO_SOUNDS.iterdir()):
            target = root / "usr/share/asterisk/sounds/asterisk-cube"
            shutil.copytree(REPO_SOUNDS, target, dirs_exist_ok=True)
        (self.host_dir / "instance.json").write_text(
            json.dumps({"name": self.name, "base_port": self.base_port}) + "\n"
        )

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


# --------------------------------------------------------------------------- config files


def empty_dialplan() -> str:
    lines = [
        "; asterisk-cube generated dialplan (sandbox placeholder).",
        "; `asterisk-cube dialplan install` overwrites this file and reloads the dialplan.",
    ]
    for ctx in CONTEXTS:
        lines += ["", f"[{ctx}]"]
    return "\n".join(lines) + "\n"


def render_config(inst: SandboxInstance, debian_dirs: dict[str, str]) -> dict[str, str]:
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


def render_pjsip(inst: SandboxInstance) -> str:
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
