"""The caller prompts shipped with the package (``sounds/`` of a checkout, data files of
the installed wheel) and ``asterisk-cube sounds install``."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

#: where Debian's Asterisk looks for ``asterisk-cube/<tone>/<prompt>`` (its data dir's
#: sounds folder); ``sounds install`` writes there by default
DEFAULT_SOUNDS_DIR = "/usr/share/asterisk/sounds/asterisk-cube"
SOUND_FORMATS = (".gsm", ".wav", ".ulaw", ".alaw", ".sln", ".g722", ".wav16")


def packaged_sounds_dir() -> Path:
    """``sounds/`` of a source checkout, else where the installed wheel put its data files
    (``share/asterisk-cube/sounds`` under the venv, the user base or the system prefix:
    the distribution's file list says which)."""
    here = Path(__file__).resolve().parent.parent / "sounds"
    if here.is_dir():
        return here
    from importlib import metadata

    try:
        files = metadata.distribution("asterisk-cube").files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        parts = Path(str(file)).parts
        if "share" in parts and parts[-2:] == ("formal", "closed.gsm"):
            found = Path(str(file.locate())).resolve().parent.parent
            if found.is_dir():
                return found
    return Path(sys.prefix) / "share" / "asterisk-cube" / "sounds"


class SoundsError(RuntimeError):
    pass


def install_sounds(target: str | Path = DEFAULT_SOUNDS_DIR) -> int:
    """Copy the packaged prompts into ``target`` (created with its parents, files 0644);
    returns how many files. Checks the source first: nothing is half-copied because the
    package lacks its prompts."""
    source = packaged_sounds_dir()
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in SOUND_FORMATS)
    if not files:
        raise SoundsError(f"no prompts found in {source}: reinstall asterisk-cube")
    target = Path(target)
    try:
        for src in files:
            dest = target / src.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            # a temp file renamed over the prompt: Asterisk playing it meanwhile reads
            # the old or the new file, never half of one
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(src, tmp)
            tmp.chmod(0o644)
            os.replace(tmp, dest)
    except OSError as exc:
        raise SoundsError(f"cannot write {exc.filename or target}: {exc.strerror}") from None
    return len(files)


def prompt_names(folder: Path) -> set[str]:
    """Prompt paths under ``folder`` without their format: ``{"formal/closed", ...}``."""
    if not folder.is_dir():
        return set()
    return {
        str(p.relative_to(folder).with_suffix(""))
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in SOUND_FORMATS
    }
