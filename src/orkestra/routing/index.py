"""The router's index: reference prompt embeddings and their outcome per tier, as plain arrays.

On disk a router is a folder with three files, never a pickle:

- ``index.npz`` — arrays, read with ``allow_pickle=False``: ``embeddings`` (N, d) float16, sorted
  by cluster; ``centroids`` (C, d) float32 and ``offsets`` (C+1) int64 (rows of cluster c are
  ``offsets[c]:offsets[c+1]``); ``tier_scores`` (N, 3) float32, budget/balanced/premium, NaN where
  the data set has no model for that tier; ``output_tokens`` (N) float32, NaN where unknown;
  ``task_ids`` (N) int32; ``prompt_hashes`` (N) uint64 (first 8 bytes of the prompt's sha256).
  Rows after the last cluster (``offsets[-1]:N``) are *everyday* rows (``routing.everyday``),
  searched apart from the outcome rows; then ``gate`` (d + 2) float32 holds the gate's weights.
- ``meta.json`` — task names and a short preview of each reference prompt (for explanations).
- ``manifest.json`` — the embedder id and its table's sha256, dimensions, row count, data
  provenance and licences, the tier mapping, the router settings, and the sha256 of the two
  files above. Loading checks every hash and refuses an index built with another embedder.

In memory the embeddings are float32, or, for a big index (``memory="auto"``: past 256 MiB as
float32, ~262k rows of 256 dimensions; or ``memory="int8"``), int8 with one float32 scale per
row: a quarter of the memory, each probed cluster widened to float32 for its scan. Cosines move
by about 1e-3 (docs/benchmarks.md); the bundled index stays float32.

Search is an inverted-file (IVF) scan: the query is compared with the cluster centroids, then
with the rows of the ``nprobe`` nearest clusters only. That keeps a decision well under a
millisecond where a brute-force scan of all rows measured ~2 ms here. The few hundred everyday
rows are scanned whole.

Format 2 added the everyday rows and the gate; a format-1 index (none of either) still loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from orkestra.errors import DataFormatError
from orkestra.routing.limits import DEFAULT_LIMITS, RouterLimits, check_npz

__all__ = ["FORMAT_VERSION", "INT8_THRESHOLD_BYTES", "KNNIndex", "prompt_hash", "sha256_file"]

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_ARRAYS = "index.npz"
_META = "meta.json"
_MANIFEST = "manifest.json"

F32 = npt.NDArray[np.float32]

INT8_THRESHOLD_BYTES = 256 << 20
"""``memory="auto"`` keeps embeddings as float32 up to this size, int8 beyond."""

_SCAN_ROWS = 512
"""Rows scored per matrix-vector product in a search. A block this size (512 KiB as float32)
stays in the CPU cache while an int8 block is widened and scored, and its product stays on one
BLAS thread: whole clusters (up to 2,048 rows) went multi-threaded, and a 1M-row decision in a
process with default thread pools measured p99 ~34 ms on a busy 2-core machine, against ~1.9 ms
in 512-row blocks (docs/benchmarks.md)."""

_buffers = threading.local()


def _scan_buffer(dim: int) -> F32:
    """This thread's float32 block for widening int8 rows (reused: no allocation per search)."""
    buffer: F32 | None = getattr(_buffers, "block", None)
    if buffer is None or buffer.shape[1] != dim:
        buffer = np.empty((_SCAN_ROWS, dim), dtype=np.float32)
        _buffers.block = buffer
    return buffer


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prompt_hash(prompt: str) -> int:
    """A stable 64-bit id of a prompt's exact text (to keep evaluation off the index's rows)."""
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "little")


@dataclass(frozen=True)
class KNNIndex:
    embeddings: npt.NDArray[Any]
    """(N, d): float32, or int8 with :attr:`scales` (see :meth:`in_memory`)."""
    centroids: F32
    offsets: npt.NDArray[np.int64]
    tier_scores: F32
    output_tokens: F32
    task_ids: npt.NDArray[np.int32]
    prompt_hashes: npt.NDArray[np.uint64]
    tasks: tuple[str, ...]
    previews: tuple[str, ...]
    manifest: Mapping[str, Any]
    gate: F32 | None = None
    """The everyday gate's weights (``routing.everyday``); None when there are no everyday rows."""
    scales: F32 | None = None
    """In memory only: with int8 ``embeddings``, row i is ``embeddings[i] * scales[i]``."""

    @property
    def size(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def outcome_size(self) -> int:
        """Rows of measured outcomes (the clustered ones)."""
        return int(self.offsets[-1])

    @property
    def everyday_size(self) -> int:
        """Everyday rows, after the clustered ones."""
        return self.size - self.outcome_size

    @property
    def embedder_id(self) -> str:
        return str(self.manifest["embedder"]["id"])

    def rows_as_float32(self, start: int, end: int) -> F32:
        """Embeddings of rows ``start:end`` as float32 (a view when they are stored so)."""
        block = np.asarray(self.embeddings[start:end], dtype=np.float32)
        if self.scales is None:
            return block
        return block * self.scales[start:end, None]

    def in_memory(self, memory: str = "auto") -> KNNIndex:
        """This index with its embeddings held as ``"float32"``, ``"int8"`` (a per-row scale) or
        ``"auto"`` (int8 past :data:`INT8_THRESHOLD_BYTES` of float32)."""
        n, d = self.embeddings.shape
        if memory == "auto":
            memory = "int8" if n * d * 4 > INT8_THRESHOLD_BYTES else "float32"
        if memory == "float32":
            if self.scales is None and self.embeddings.dtype == np.float32:
                return self
            dense = np.ascontiguousarray(self.rows_as_float32(0, n))
            return dataclasses.replace(self, embeddings=dense, scales=None)
        if memory != "int8":
            raise ValueError(f"memory must be 'auto', 'float32' or 'int8', not {memory!r}")
        if self.scales is not None:
            return self
        scales = np.empty(n, dtype=np.float32)
        quantised = np.empty((n, d), dtype=np.int8)
        for start in range(0, n, 65536):  # bounded temporaries, from float16 or float32
            block = np.asarray(self.embeddings[start : start + 65536], dtype=np.float32)
            peak = np.abs(block).max(axis=1) if d else np.zeros(len(block), np.float32)
            scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            quantised[start : start + len(block)] = np.rint(block / scale[:, None])
            scales[start : start + len(block)] = scale
        return dataclasses.replace(self, embeddings=quantised, scales=scales)

    def contains(self, prompts: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Which of ``prompts`` are reference prompts of this index (exact text)."""
        hashes = np.fromiter((prompt_hash(p) for p in prompts), np.uint64, len(prompts))
        return np.isin(hashes, self.prompt_hashes)

    def search(
        self, query: F32, k: int, nprobe: int, max_rows: int | None = None
    ) -> tuple[npt.NDArray[np.intp], F32]:
        """Row ids and cosine similarities of (approximately) the ``k`` nearest rows: the
        ``nprobe`` clusters nearest to ``query`` are scanned, nearest first while they add up to
        at most ``max_rows`` rows (None: no cap; the nearest cluster is always scanned)."""
        n_clusters = self.centroids.shape[0]
        nprobe = min(nprobe, n_clusters)
        centroid_sims = self.centroids @ query
        if nprobe < n_clusters:
            probe = np.argpartition(-centroid_sims, nprobe - 1)[:nprobe]
        else:
            probe = np.arange(n_clusters)
        starts = self.offsets[probe]
        ends = self.offsets[probe + 1]
        sizes = ends - starts
        if max_rows is not None and sizes.sum() > max_rows:
            nearest = np.argsort(-centroid_sims[probe], kind="stable")
            kept = max(1, int(np.searchsorted(np.cumsum(sizes[nearest]), max_rows, "right")))
            nearest = nearest[:kept]
            starts, ends, sizes = starts[nearest], ends[nearest], sizes[nearest]
        # Rows of a cluster are contiguous: score each probed slice in place (no gather copy),
        # in blocks of at most _SCAN_ROWS rows, an int8 block widened into a reused buffer.
        sims = np.empty(int(sizes.sum()), dtype=np.float32)
        buffer = _scan_buffer(self.embeddings.shape[1]) if self.scales is not None else None
        at = 0
        for cluster_start, cluster_end in zip(starts.tolist(), ends.tolist(), strict=True):
            for start in range(cluster_start, cluster_end, _SCAN_ROWS):
                end = min(cluster_end, start + _SCAN_ROWS)
                out = sims[at : at + end - start]
                if buffer is None:
                    np.matmul(self.embeddings[start:end], query, out=out)
                else:
                    assert self.scales is not None
                    block = buffer[: end - start]
                    np.copyto(block, self.embeddings[start:end], casting="unsafe")
                    np.matmul(block, query, out=out)
                    out *= self.scales[start:end]
                at += end - start
        # Positions in ``sims`` back to row ids: each probed cluster's rows follow the last's.
        first = np.zeros(len(sizes), dtype=np.int64)
        np.cumsum(sizes[:-1], out=first[1:])
        n = sims.shape[0]
        top = np.argpartition(sims, n - k)[n - k :] if k < n else np.arange(n)
        cluster = np.searchsorted(first, top, side="right") - 1
        return (top - first[cluster] + starts[cluster]).astype(np.intp), sims[top]

    def search_everyday(self, query: F32, k: int) -> tuple[npt.NDArray[np.intp], F32]:
        """Row ids and cosine similarities of the ``k`` nearest everyday rows (exact)."""
        start = self.outcome_size
        sims = self.rows_as_float32(start, self.size) @ query
        rows = np.arange(start, self.size)
        if k < sims.shape[0]:
            top = np.argpartition(-sims, k - 1)[:k]
            rows, sims = rows[top], sims[top]
        return rows, sims

    # -- persistence ------------------------------------------------------------------------

    def save(self, folder: Path | str) -> Path:
        """Write the index to ``folder`` (created), manifest last, with every file's sha256."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        arrays: dict[str, npt.NDArray[Any]] = {
            "embeddings": self.rows_as_float32(0, self.size).astype(np.float16),
            "centroids": self.centroids,
            "offsets": self.offsets,
            "tier_scores": self.tier_scores,
            "output_tokens": self.output_tokens,
            "task_ids": self.task_ids,
            "prompt_hashes": self.prompt_hashes,
        }
        if self.gate is not None:
            arrays["gate"] = self.gate
        np.savez(buffer, allow_pickle=False, **arrays)
        (folder / _ARRAYS).write_bytes(buffer.getvalue())
        meta = {"tasks": list(self.tasks), "previews": list(self.previews)}
        (folder / _META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        manifest = dict(self.manifest)
        manifest["format_version"] = FORMAT_VERSION
        manifest["files"] = {name: sha256_file(folder / name) for name in (_ARRAYS, _META)}
        (folder / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(
        cls, folder: Path | str, *, limits: RouterLimits = DEFAULT_LIMITS, memory: str = "auto"
    ) -> KNNIndex:
        """Read and verify an index folder; a corrupt or mismatched file, or arrays past
        ``limits`` (checked before they are read), is a DataFormatError. ``memory``: how the
        embeddings are held (:meth:`in_memory`)."""
        folder = Path(folder)
        try:
            manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFormatError(f"{folder}: not a router (no {_MANIFEST})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataFormatError(f"{folder / _MANIFEST}: malformed: {e}") from None
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        if version not in _READABLE_VERSIONS:
            raise DataFormatError(f"{folder}: unsupported router format")
        files = manifest.get("files", {})
        for name in (_ARRAYS, _META):
            path = folder / name
            if not path.is_file():
                raise DataFormatError(f"{path}: missing")
            if sha256_file(path) != files.get(name):
                raise DataFormatError(f"{path}: sha256 does not match the manifest (corrupt?)")
        check_npz(folder / _ARRAYS, manifest, limits)
        try:
            with np.load(folder / _ARRAYS, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
            index = cls(
                embeddings=arrays["embeddings"],  # converted by in_memory() below
                centroids=np.ascontiguousarray(arrays["centroids"], dtype=np.float32),
                offsets=arrays["offsets"].astype(np.int64),
                tier_scores=arrays["tier_scores"].astype(np.float32),
                output_tokens=arrays["output_tokens"].astype(np.float32),
                task_ids=arrays["task_ids"].astype(np.int32),
                prompt_hashes=arrays["prompt_hashes"].astype(np.uint64),
                tasks=tuple(meta["tasks"]),
                previews=tuple(meta["previews"]),
                manifest=manifest,
                gate=(
                    np.ascontiguousarray(arrays["gate"], dtype=np.float32)
                    if "gate" in arrays
                    else None
                ),
            )
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise DataFormatError(f"{folder}: malformed router arrays: {e}") from None
        index.check()
        return index.in_memory(memory)

    def check(self) -> None:
        n, d = self.embeddings.shape
        ok = (
            self.centroids.shape[1] == d
            and self.offsets.shape == (self.centroids.shape[0] + 1,)
            and int(self.offsets[0]) == 0
            and int(self.offsets[-1]) <= n
            and bool(np.all(np.diff(self.offsets) >= 0))
            and (self.everyday_size == 0 or self.gate is not None)
            and (self.gate is None or self.gate.shape == (d + 2,))
            and (self.scales is None or self.scales.shape == (n,))
            and self.tier_scores.shape == (n, 3)
            and self.output_tokens.shape == (n,)
            and self.task_ids.shape == (n,)
            and self.prompt_hashes.shape == (n,)
            and len(self.previews) == n
            and (n == 0 or int(self.task_ids.max()) < len(self.tasks))
            and int(self.manifest.get("dim", d)) == d
        )
        if not ok:
            raise DataFormatError("router index arrays do not fit together (truncated or edited?)")
