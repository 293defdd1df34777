"""Where routers come from: the bundled default, a folder, or a verified download.

A downloaded router is a ``.tar.gz`` or ``.zip`` of a router folder. It must come over HTTPS
(plain ``http://`` only from 127.0.0.1/localhost, which tests use), its sha256 must be given and
match, and it is unpacked (never outside the target, no links) into
``$ORKESTRA_HOME/routers/<sha256>/`` (default ``~/.orkestra``) through a temporary folder and an
atomic rename, so a half-written download is never used. A cached copy is reused. Sizes are
limited (:mod:`orkestra.routing.limits`): the download, and what the archive declares it unpacks
to, checked before anything is unpacked.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from orkestra.errors import ConfigurationError, DataFormatError
from orkestra.routing.limits import DEFAULT_LIMITS, RouterLimits, check_unpacked

__all__ = ["DEFAULT_ROUTER_DIR", "fetch_router", "orkestra_home"]

DEFAULT_ROUTER_DIR = Path(__file__).parent / "assets" / "router-default"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def orkestra_home() -> Path:
    """``$ORKESTRA_HOME``, default ``~/.orkestra``."""
    return Path(os.environ.get("ORKESTRA_HOME") or Path.home() / ".orkestra")


def fetch_router(
    source: str | Path,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    limits: RouterLimits = DEFAULT_LIMITS,
) -> Path:
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
                _download(response, f, digest, text, limits.max_download_bytes)
        except OSError as e:
            raise ConfigurationError(f"could not download router from {text}: {e}") from e
        if digest.hexdigest() != sha256:
            raise DataFormatError(
                f"router download from {text} has sha256 {digest.hexdigest()}, expected {sha256} "
                "(corrupt, truncated or not the artifact you meant)"
            )
        unpacked = Path(tmp) / "unpacked"
        _unpack(archive, unpacked, limits)
        roots = [p.parent for p in unpacked.rglob("manifest.json")]
        if len(roots) != 1:
            raise DataFormatError(f"{text}: the archive must hold exactly one router folder")
        try:
            os.replace(roots[0], target)
        except OSError:
            if not (target / "manifest.json").is_file():  # lost a race with another process?
                raise
    return target


def _download(response: Any, into: BinaryIO, digest: Any, url: str, cap: int) -> None:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise DataFormatError(
            f"router download from {url} is {int(declared):,} bytes (limit: {cap:,}); refused"
        )
    received = 0
    for block in iter(lambda: response.read(1 << 20), b""):
        received += len(block)
        if received > cap:
            raise DataFormatError(f"router download from {url} passed {cap:,} bytes; stopped")
        digest.update(block)
        into.write(block)


def _unpack(archive: Path, into: Path, limits: RouterLimits) -> None:
    into.mkdir()
    root = into.resolve()
    what = "router archive"
    packed = archive.stat().st_size
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                members = z.infolist()
                check_unpacked(what, (m.file_size for m in members), packed, limits)
                for info in members:
                    _safe_member(root, info.filename)
                z.extractall(into)  # noqa: S202 - every member checked above
            return
        with tarfile.open(archive) as t:
            # Member by member, so a member past the limits stops it before its data is read.
            check_unpacked(what, _tar_sizes(t, root), packed, limits)
            t.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise DataFormatError(f"router archive is not a readable tar.gz or zip: {e}") from e


def _tar_sizes(t: tarfile.TarFile, root: Path) -> Iterator[int]:
    member = t.next()
    while member is not None:
        if not (member.isfile() or member.isdir()):
            raise DataFormatError(f"router archive member {member.name!r} is a link")
        _safe_member(root, member.name)
        yield member.size
        member = t.next()


def _safe_member(root: Path, name: str) -> None:
    if not (root / name).resolve().is_relative_to(root):
        raise DataFormatError(f"router archive member {name!r} points outside the archive")


def copy_router(source: Path, target: Path) -> None:
    """Copy a router folder (used by tests and ``orkestra train``)."""
    shutil.copytree(source, target)
