"""Router archives and index files are size-checked from what they declare, before anything is
unpacked or allocated: a small file that declares gigabytes is a DataFormatError."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import orkestra as o
from orkestra.routing.artifacts import orkestra_home
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.index import KNNIndex, sha256_file
from orkestra.routing.knn import KNNRouter
from orkestra.routing.limits import RouterLimits
from orkestra.routing.train import build_index
from tests.routing.test_knn_router import _rows

GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture(scope="module")
def router_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = build_index(_rows(), StaticEmbedder.default(), n_clusters=4)
    return index.save(tmp_path_factory.mktemp("router") / "router")


class Served:
    """One payload over HTTP on 127.0.0.1 (plain http is allowed there)."""

    def __init__(self, payload: bytes, *, content_length: bool = True) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                if content_length:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/router.tar.gz"
        self.sha256 = hashlib.sha256(payload).hexdigest()

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def tar_gz_bomb(declared: int) -> bytes:
    """A tar.gz whose one member holds ``declared`` zero bytes, in about declared/1000 bytes:
    gzip members concatenate, so one compressed MiB of zeros is repeated."""
    header = tarfile.TarInfo("router/index.npz")
    header.size = declared
    manifest = tarfile.TarInfo("router/manifest.json")
    manifest.size = 2
    zeros = gzip.compress(b"\0" * MiB, compresslevel=9)
    parts = [gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT))]
    parts += [zeros] * (declared // MiB)
    parts.append(gzip.compress(manifest.tobuf(format=tarfile.GNU_FORMAT) + b"{}".ljust(512, b"\0")))
    parts.append(gzip.compress(b"\0" * 1024))  # the end-of-archive blocks
    return b"".join(parts)


def files_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_tar_gz_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    payload = tar_gz_bomb(GiB)
    assert len(payload) < 2 * MiB  # the "1 MB → 1 GiB"
    with Served(payload) as served:
        started = time.perf_counter()
        with pytest.raises(o.DataFormatError, match=r"unpacks to more than 64\.0 MiB") as info:
            KNNRouter.load(served.url, sha256=served.sha256)
        elapsed = time.perf_counter() - started
    assert "refusing to unpack it" in str(info.value)
    assert elapsed < 10  # decompressing 1 GiB would be the slow path; we stop at the header
    home = orkestra_home()
    assert files_under(home) < 4 * MiB  # only the download itself, already cleaned up


def test_a_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("router/index.npz", "w") as f:
            for _ in range(8):
                f.write(b"\0" * MiB)
        z.writestr("router/manifest.json", "{}")
    limits = RouterLimits(expansion_floor_bytes=MiB)
    with (
        Served(buffer.getvalue()) as served,
        pytest.raises(o.DataFormatError, match=r"unpacks to more than 1\.0 MiB"),
    ):
        KNNRouter.load(served.url, sha256=served.sha256, limits=limits)


def test_too_many_members_and_oversized_downloads_are_refused(router_folder: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        t.add(router_folder, arcname="router")
    payload = buffer.getvalue()
    with Served(payload) as served:
        with pytest.raises(o.DataFormatError, match="more than 2 members"):
            KNNRouter.load(served.url, sha256=served.sha256, limits=RouterLimits(max_members=2))
        small = RouterLimits(max_download_bytes=len(payload) - 1)
        with pytest.raises(o.DataFormatError, match=r"bytes \(limit: "):
            KNNRouter.load(served.url, sha256=served.sha256, limits=small)
    with Served(payload, content_length=False) as served:
        small = RouterLimits(max_download_bytes=len(payload) // 2)
        with pytest.raises(o.DataFormatError, match="stopped"):
            KNNRouter.load(served.url, sha256=served.sha256, limits=small)
        assert KNNRouter.load(served.url, sha256=served.sha256).index.size == 60


def write_npy_header(f: io.BufferedIOBase, shape: tuple[int, ...], descr: str = "<f2") -> None:
    np.lib.format.write_array_header_1_0(
        f, {"descr": descr, "fortran_order": False, "shape": shape}
    )


def replace_array(folder: Path, name: str, write: object) -> None:
    """Swap one array of ``index.npz`` for what ``write(f)`` writes, and re-sign the files
    (an archive's author controls its manifest: the sha256s prove nothing about sizes)."""
    source = zipfile.ZipFile(folder / "index.npz")
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            if info.filename == f"{name}.npy":
                with z.open(info.filename, "w") as f:
                    write(f)  # type: ignore[operator]
            else:
                z.writestr(info.filename, source.read(info))
    (folder / "index.npz").write_bytes(buffer.getvalue())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["index.npz"] = sha256_file(folder / "index.npz")
    (folder / "manifest.json").write_text(json.dumps(manifest))


def copy_of(router_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in router_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_an_array_declaring_a_huge_shape_is_refused_without_allocating(
    router_folder: Path, tmp_path: Path
) -> None:
    folder = copy_of(router_folder, tmp_path)
    replace_array(folder, "embeddings", lambda f: write_npy_header(f, (1 << 40, 256)))
    tracemalloc.start()
    try:
        with pytest.raises(o.DataFormatError, match="'embeddings' is truncated"):
            KNNIndex.load(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB


def test_arrays_past_the_memory_limit_are_refused_before_loading(
    router_folder: Path, tmp_path: Path
) -> None:
    def zeros(f: io.BufferedIOBase) -> None:  # 16 MiB of float16 zeros: ~16 KiB deflated
        write_npy_header(f, (32_768, 256))
        for _ in range(16):
            f.write(b"\0" * MiB)

    folder = copy_of(router_folder, tmp_path)
    replace_array(folder, "centroids", zeros)
    assert (folder / "index.npz").stat().st_size < MiB
    limits = RouterLimits(expansion_floor_bytes=4 * MiB)
    with pytest.raises(o.DataFormatError, match=r"unpacks to more than 4\.0 MiB"):
        KNNIndex.load(folder, limits=limits)
    limits = RouterLimits(max_index_bytes=8 * MiB)
    with pytest.raises(o.DataFormatError, match=r"would take 32\.\d MiB of memory"):
        KNNIndex.load(folder, limits=limits)


@pytest.mark.parametrize(
    ("name", "shape", "descr", "match"),
    [
        ("tier_scores", (60, 4), "<f4", r"'tier_scores' has shape \(60, 4\), expected \(60, 3\)"),
        ("embeddings", (61, 256), "<f2", "the manifest says rows=60, the arrays 61"),
        ("offsets", (5,), "|O", "non-numeric type object"),
        ("task_ids", (60,), "<U8", "non-numeric type <U8"),
    ],
)
def test_arrays_that_do_not_fit_are_refused_from_their_headers(
    router_folder: Path,
    tmp_path: Path,
    name: str,
    shape: tuple[int, ...],
    descr: str,
    match: str,
) -> None:
    def write(f: io.BufferedIOBase) -> None:
        write_npy_header(f, shape, descr)
        f.write(b"\0" * (int(np.prod(shape)) * 8))

    folder = copy_of(router_folder, tmp_path)
    replace_array(folder, name, write)
    with pytest.raises(o.DataFormatError, match=match):
        KNNIndex.load(folder)


def test_the_bundled_router_is_within_the_default_limits() -> None:
    assert KNNRouter.load().index.size > 20_000


@pytest.fixture(autouse=True)
def _stop_tracemalloc() -> Iterator[None]:
    yield
    if tracemalloc.is_tracing():
        tracemalloc.stop()
