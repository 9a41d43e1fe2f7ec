"""Browser phones on Asterisk: the DTLS certificate, the generated PJSIP file, its install.

``asterisk-cube webrtc install`` (and the sandbox) call these; what the file holds is
:func:`asterisk_cube.core.phones.render_pjsip`. See docs/webrtc.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from asterisk_cube.core import phones
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from asterisk_cube.config import Settings

log = get_logger(__name__)

CERT_NAME = "dtls.crt"
KEY_NAME = "dtls.key"
CERT_DAYS = 3650


class WebrtcError(RuntimeError):
    """Setting up the browser phones failed; the message says why in one line."""


def ensure_certificate(
    cert_dir: str | os.PathLike, uid: int | None = None, gid: int | None = None
) -> tuple[Path, Path, bool]:
    """Make a self-signed DTLS certificate and key in ``cert_dir`` unless both exist.

    Browsers check DTLS certificates by the fingerprint in the SDP, not by a CA, so a
    self-signed one is what WebRTC uses. The key is readable by its owner and group
    only (``uid``/``gid``: Asterisk's user, when we run as root). Returns (cert, key,
    whether it was made now)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(cert_dir)
    cert, key = folder / CERT_NAME, folder / KEY_NAME
    if cert.is_file() and key.is_file():
        return cert, key, False
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asterisk-cube WebRTC")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .sign(private, hashes.SHA256())
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    _write(key, key_pem, 0o640, uid, gid)
    _write(cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644, uid, gid)
    if uid is not None or gid is not None:
        os.chown(folder, -1 if uid is None else uid, -1 if gid is None else gid)
    return cert, key, True


def _write(path: Path, data: bytes, mode: int, uid: int | None, gid: int | None) -> None:
    """Write ``path`` atomically with ``mode`` (never readable by others in between)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        if uid is not None or gid is not None:
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _asterisk_ids() -> tuple[int | None, int | None]:
    """The host's ``asterisk`` user and group when we run as root (else no change)."""
    if os.geteuid() != 0:
        return None, None
    import grp
    import pwd

    try:
        return pwd.getpwnam("asterisk").pw_uid, grp.getgrnam("asterisk").gr_gid
    except KeyError:
        return None, None


def render(s: Session, settings: Settings, secret_key: str) -> str:
    """The PJSIP file for every active user's browser phone."""
    w = settings.webrtc
    if not w.ws_url:
        raise WebrtcError("[webrtc] ws_url is not set: say where browsers reach Asterisk")
    inner = Path(w.asterisk_cert_dir or w.cert_dir)
    config = phones.WebrtcConfig(
        ws_url=w.ws_url,
        cert_file=str(inner / CERT_NAME),
        key_file=str(inner / KEY_NAME),
        transport=w.transport,
    )
    names = s.scalars(
        select(m.Agent.username).where(m.Agent.active.is_(True)).order_by(m.Agent.username)
    )
    return phones.render_pjsip(
        config, [(name, phones.sip_password(secret_key, name)) for name in names]
    )


def install(text: str, settings: Settings, *, reload: bool = True) -> str:
    """Make the certificate if missing, write the PJSIP file, reload PJSIP in Asterisk."""
    from asterisk_cube.ami.commands import AmiError, run_command

    w = settings.webrtc
    uid, gid = _asterisk_ids()
    done = []
    try:
        _cert, _key, made = ensure_certificate(w.cert_dir, uid, gid)
        if made:
            done.append(f"made the DTLS certificate in {w.cert_dir}")
    except OSError as exc:
        raise WebrtcError(f"cannot write the certificate in {w.cert_dir}: {exc.strerror}") from None
    target = Path(w.pjsip_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        group = target.parent.stat().st_gid if os.geteuid() == 0 else None
        # it holds the SIP passwords: Asterisk's group may read it, nobody else
        _write(target, text.encode(), 0o640, None, group)
    except OSError as exc:
        raise WebrtcError(f"cannot write {target}: {exc.strerror}") from None
    done.append(f"wrote {target}")
    if not reload:
        return "; ".join(done)
    try:
        run_command(settings.ami, "module reload res_pjsip.so")
        transports = run_command(settings.ami, "pjsip show transports")
    except AmiError as exc:
        raise WebrtcError(f"{exc} (the file is written; reload PJSIP yourself)") from None
    scheme = w.ws_url.split(":", 1)[0]
    if not w.transport and f"cube-webrtc-{scheme}" not in transports:
        raise WebrtcError(
            f"Asterisk did not load transport cube-webrtc-{scheme}: "
            f"is `#include {target.name}` in pjsip.conf?"
        )
    done.append("PJSIP reloaded in Asterisk")
    return "; ".join(done)


class EndpointSync:
    """``serve`` keeps the installed browser phones current (docs/webrtc.md, "Agents added
    or removed while serve runs"): on every configuration change it sees (the
    :class:`~asterisk_cube.db.config_version.ConfigWatcher`), the PJSIP file is rendered
    again and, only if it differs from the installed one, rewritten and PJSIP reloaded over
    AMI. Nothing happens without ``[webrtc] ws_url`` or before ``webrtc install`` wrote the
    file once (the admin opts in there). A failure (a file ``serve`` may not write, AMI
    away) is logged once and retried at the next change, not every second: ``webrtc
    install`` as root is the way then."""

    def __init__(self, settings: Settings, sessions) -> None:
        self.settings = settings
        self.sessions = sessions
        self.refused: str | None = None  # the last error logged (logged once)
        self.unloaded = False  # the last try failed: the file may be new to Asterisk

    def sync(self) -> bool:
        """Rewrite the file and reload PJSIP if the users changed. True if it did."""
        from asterisk_cube.db.session import transaction
        from asterisk_cube.web.auth import load_secret_key

        w = self.settings.webrtc
        target = Path(w.pjsip_path)
        if not w.ws_url or not target.is_file():
            return False
        with transaction(self.sessions) as s:
            text = render(s, self.settings, load_secret_key(self.settings))
        try:
            if target.read_text() == text and not self.unloaded:
                return False
        except OSError:
            pass  # unreadable for us: install() says whether it can write it
        try:
            done = install(text, self.settings)
        except WebrtcError as exc:
            self.unloaded = True
            if str(exc) != self.refused:
                self.refused = str(exc)
                log.error("webrtc_endpoints_not_updated", error=str(exc))
            return False
        self.refused, self.unloaded = None, False
        log.info("webrtc_endpoints_updated", done=done)
        return True

    async def reload(self) -> None:
        """The watcher's reload: :meth:`sync` off the event loop."""
        await asyncio.to_thread(self.sync)


def check(settings: Settings, sessions) -> list:
    """``asterisk-cube doctor``'s browser phone checks (only with ``[webrtc] ws_url``)."""
    from asterisk_cube.ami.commands import AmiError, run_command
    from asterisk_cube.db.session import transaction
    from asterisk_cube.web.auth import load_secret_key

    w = settings.webrtc
    rendered = None  # no database: the file is only checked to exist
    if sessions is not None:
        with transaction(sessions) as s:
            rendered = render(s, settings, load_secret_key(settings))
    try:
        installed: str | None = Path(w.pjsip_path).read_text()
    except OSError:
        installed = None
    try:
        transports: str | None = run_command(settings.ami, "pjsip show transports")
    except AmiError:
        transports = None  # the AMI checks say why
    folder = Path(w.cert_dir)
    absent = [str(folder / n) for n in (CERT_NAME, KEY_NAME) if not (folder / n).is_file()]
    transport = w.transport or f"cube-webrtc-{w.ws_url.split(':', 1)[0]}"
    return phones.doctor_findings(
        w.ws_url,
        installed,
        rendered,
        w.pjsip_path,
        transports,
        transport,
        absent[0] if absent else None,
    )
