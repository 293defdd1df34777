"""Where routers come from: the bundled default, a folder, or a verified download.

A downloaded router is a ``.tar.gz`` or ``.zip`` of a router folder. It must come over HTTPS
(plain ``http://`` only from 127.0.0.1/localhost, which tests use), its sha256 must be given and
match, and it is unpacked (never outside the target, no links) into
``$ORKESTRA_HOME/routers/<sha256>/`` (default ``~/.orkestra``) through a temporary folder and an
atomic rename, so a half-written download is never used. A cached copy is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from orkestra.errors import ConfigurationError, DataFormatError

__all__ = ["DEFAULT_ROUTER_DIR", "fetch_router", "orkestra_home"]

DEFAULT_ROUTER_DIR = Path(__file__).parent / "assets" / "router-default"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def orkestra_home() -> Path:
    """``$ORKESTRA_HOME``, default ``~/.orkestra``."""
    return Path(os.environ.get("ORKESTRA_HOME") or Path.home() / ".orkestra")


def fetch_router(source: str | Path, *, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """The local folder of a router given as a folder path or an archive URL."""
    text = str(source)
    if "://" not in text:
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise ConfigurationError(f"router folder {folder} does not exist")
        return folder
    url = urllib.parse.urlsplit(text)
    if url.scheme == "http" and url.hostname not in _LOCAL_HOSTS:
        raise ConfigurationError(f"refusing plain-http router download {text!r}: use https://")
    if url.scheme not in ("https", "http"):
        raise ConfigurationError(f"unsupported router URL scheme in {text!r}")
    if not sha256 or len(sha256) != 64:
        raise ConfigurationError("a downloaded router needs its sha256 (64 hex digits)")
    sha256 = sha256.lower()
    target = orkestra_home() / "routers" / sha256
    if (target / "manifest.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        archive = Path(tmp) / "router.archive"
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(text, timeout=timeout) as response, archive.open("wb") as f:  # noqa: S310 - scheme checked above
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    f.write(block)
        except OSError as e:
            raise ConfigurationError(f"could not download router from {text}: {e}") from e
        if digest.hexdigest() != sha256:
            raise DataFormatError(
                f"router download from {text} has sha256 {digest.hexdigest()}, expected {sha256} "
                "(corrupt, truncated or not the artifact you meant)"
            )
        unpacked = Path(tmp) / "unpacked"
        _unpack(archive, unpacked)
        roots = [p.parent for p in unpacked.rglob("manifest.json")]
        if len(roots) != 1:
            raise DataFormatError(f"{text}: the archive must hold exactly one router folder")
        try:
            os.replace(roots[0], target)
        except OSError:
            if not (target / "manifest.json").is_file():  # lost a race with another process?
                raise
    return target


def _unpack(archive: Path, into: Path) -> None:
    into.mkdir()
    root = into.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    _safe_member(root, info.filename)
                z.extractall(into)  # noqa: S202 - every member checked above
            return
        with tarfile.open(archive) as t:
            for member in t.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise DataFormatError(f"router archive member {member.name!r} is a link")
                _safe_member(root, member.name)
            t.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise DataFormatError(f"router archive is not a readable tar.gz or zip: {e}") from e


def _safe_member(root: Path, name: str) -> None:
    if not (root / name).resolve().is_relative_to(root):
        raise DataFormatError(f"router archive member {name!r} points outside the archive")


def copy_router(source: Path, target: Path) -> None:
    """Copy a router folder (used by tests and ``orkestra train``)."""
    shutil.copytree(source, target)
