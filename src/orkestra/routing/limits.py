"""Size limits for router files: checked against what an archive and each ``.npy`` header
*declare*, before anything is unpacked, read or allocated.

A router archive or ``index.npz`` is a zip or tar.gz, so a 1 MB file can declare gigabytes of
zeros; an ``.npy`` header can declare any shape. A sha256 only proves the file is the one you
were given, not that it is reasonable. So, by default:

- a download stops at 1 GiB;
- an archive may hold at most 100 members, unpacking to at most 4 GiB, and to at most 20× its
  own size once past 64 MiB (real routers are arrays of floats: they barely compress);
- ``index.npz``'s arrays follow the same expansion rule, must have numeric types and shapes
  that fit together and the manifest (rows, dimensions, clusters), and may take at most 4 GiB
  of memory once loaded.

Anything past a limit is a :class:`~orkestra.DataFormatError` saying which limit; pass your own
:class:`RouterLimits` for a router that really is bigger.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orkestra.errors import DataFormatError

__all__ = ["DEFAULT_LIMITS", "RouterLimits", "check_npz", "check_unpacked"]

_MiB = 1 << 20
_GiB = 1 << 30


@dataclass(frozen=True)
class RouterLimits:
    """How big a router from a file or URL may be (see the module's docstring)."""

    max_download_bytes: int = _GiB
    max_members: int = 100
    max_unpacked_bytes: int = 4 * _GiB
    max_expansion: float = 20.0
    """Unpacked bytes over packed bytes, once past ``expansion_floor_bytes``."""
    expansion_floor_bytes: int = 64 * _MiB
    max_index_bytes: int = 4 * _GiB
    """The loaded arrays' memory (embeddings are loaded as float32)."""
    max_dim: int = 16_384

    def unpacked_cap(self, packed_bytes: int) -> int:
        """The most ``packed_bytes`` of archive may unpack to."""
        by_ratio = max(self.expansion_floor_bytes, int(self.max_expansion * packed_bytes))
        return min(self.max_unpacked_bytes, by_ratio)


DEFAULT_LIMITS = RouterLimits()


def _size(n: int) -> str:
    return f"{n / _MiB:,.1f} MiB" if n < _GiB else f"{n / _GiB:,.2f} GiB"


def check_unpacked(
    what: str, sizes: Iterable[int], packed_bytes: int, limits: RouterLimits
) -> None:
    """Refuse an archive whose members (their declared sizes, in order) exceed the limits;
    stops at the first member past one, so a bomb is never read to its end."""
    cap = limits.unpacked_cap(packed_bytes)
    total = 0
    for count, size in enumerate(sizes, start=1):
        if count > limits.max_members:
            raise DataFormatError(f"{what}: more than {limits.max_members} members")
        total += size
        if total > cap:
            raise DataFormatError(
                f"{what}: unpacks to more than {_size(cap)} from {_size(packed_bytes)} "
                f"(limit: {_size(limits.max_unpacked_bytes)}, or {limits.max_expansion:g}× "
                f"the archive past {_size(limits.expansion_floor_bytes)}); refusing to unpack it"
            )


# What each array of a router index is, as (rows, dimensions, clusters) shapes.
_SHAPES = {
    "embeddings": ("n", "d"),
    "centroids": ("c", "d"),
    "offsets": ("c+1",),
    "tier_scores": ("n", 3),
    "output_tokens": ("n",),
    "task_ids": ("n",),
    "prompt_hashes": ("n",),
}
_OPTIONAL_SHAPES = {"gate": ("d+2",)}
"""Format 2: the everyday gate's weights (routing.everyday), present with everyday rows."""
_LOADED_ITEMSIZE = {"embeddings": 4, "centroids": 4, "offsets": 8, "tier_scores": 4}
"""Loading converts these to float32/int64: count the memory they will take then."""


def _header(z: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> tuple[tuple[int, ...], Any]:
    if not info.filename.endswith(".npy"):
        raise DataFormatError(f"{what}: member {info.filename!r} is not an array (.npy)")
    try:
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unknown .npy version {version}")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataFormatError(f"{what}: unreadable array header in {info.filename!r}: {e}") from e
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataFormatError(f"{what}: array {info.filename!r} has non-numeric type {dtype}")
    return tuple(int(s) for s in shape), dtype


def check_npz(path: Path, manifest: Mapping[str, Any], limits: RouterLimits) -> None:
    """Check ``index.npz``'s declared sizes, array types and shapes against each other, the
    manifest and ``limits``, reading only the zip directory and the ``.npy`` headers."""
    what = str(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataFormatError(f"{what}: not a readable .npz: {e}") from e
    with z:
        members = z.infolist()
        check_unpacked(what, (m.file_size for m in members), path.stat().st_size, limits)
        shapes = {}
        memory = 0
        for info in members:
            shape, dtype = _header(z, info, what)
            name = info.filename[: -len(".npy")]
            count = math.prod(shape)
            data_bytes = count * dtype.itemsize
            if info.file_size < data_bytes:
                raise DataFormatError(f"{what}: array {name!r} is truncated")
            memory += count * max(dtype.itemsize, _LOADED_ITEMSIZE.get(name, 0))
            shapes[name] = shape
    if memory > limits.max_index_bytes:
        raise DataFormatError(
            f"{what}: its arrays would take {_size(memory)} of memory "
            f"(limit: {_size(limits.max_index_bytes)})"
        )
    _check_shapes(what, shapes, manifest, limits)


def _check_shapes(
    what: str,
    shapes: Mapping[str, tuple[int, ...]],
    manifest: Mapping[str, Any],
    limits: RouterLimits,
) -> None:
    missing = sorted(set(_SHAPES) - set(shapes))
    if missing:
        raise DataFormatError(f"{what}: missing arrays {missing}")
    embeddings, centroids = shapes["embeddings"], shapes["centroids"]
    if len(embeddings) != 2 or len(centroids) != 2:
        raise DataFormatError(f"{what}: embeddings and centroids must be 2-D")
    sizes = {"n": embeddings[0], "d": embeddings[1], "c": centroids[0]}
    for key, name in (("n", "rows"), ("d", "dim"), ("c", "clusters")):
        declared = manifest.get(name)
        if declared is not None and declared != sizes[key]:
            raise DataFormatError(
                f"{what}: the manifest says {name}={declared!r}, the arrays {sizes[key]}"
            )
    if sizes["d"] > limits.max_dim:
        raise DataFormatError(
            f"{what}: {sizes['d']} dimensions (limit: {limits.max_dim}); not a router index"
        )
    sizes["c+1"] = sizes["c"] + 1
    sizes["d+2"] = sizes["d"] + 2
    for name, spec in _SHAPES.items() | _OPTIONAL_SHAPES.items():
        if name not in shapes:
            continue
        expected = tuple(sizes[s] if isinstance(s, str) else s for s in spec)
        if shapes[name] != expected:
            raise DataFormatError(
                f"{what}: array {name!r} has shape {shapes[name]}, expected {expected}"
            )
