"""The sandbox's chroot and the host around it: where it lives, building it (debootstrap +
apt-get), the host tools, mounts, processes inside it and free ports. Development only,
like :mod:`asterisk_cube.sandbox`; every failure is a one-line :class:`SandboxError`.
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
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("asterisk_cube.sandbox")  # one logger for the sandbox

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
