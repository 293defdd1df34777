"""Embedders beyond the bundled ones: any sentence-transformers model.

A router index records the id of the embedder that built it and refuses any other, so a router
built with one of these must be queried with the same model (``orkestra train`` builds with the
static embedder; build with ``orkestra.routing.train.build_index(rows, embedder)`` for others).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SentenceTransformerEmbedder"]


class SentenceTransformerEmbedder:
    """Any sentence-transformers model as the router's embedder (extra ``orkestra-router[st]``).

    >>> embedder = SentenceTransformerEmbedder("all-mpnet-base-v2")   # doctest: +SKIP

    The model is loaded by sentence-transformers (from a local path, or from the hub, which
    needs network on first use). Vectors are L2-normalised; the id is ``st:<name>``.
    """

    def __init__(self, model_name_or_path: str, *, device: str = "cpu", **kwargs: Any) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError(
                "SentenceTransformerEmbedder needs sentence-transformers: "
                "pip install 'orkestra-router[st]'"
            ) from e
        self._name = model_name_or_path
        self._model = SentenceTransformer(model_name_or_path, device=device, **kwargs)
        dim = self._model.get_sentence_embedding_dimension()
        if dim is None:
            raise ValueError(f"{model_name_or_path}: the model does not say its dimension")
        self._dim = int(dim)

    @property
    def id(self) -> str:
        return f"st:{self._name}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        vectors = self._model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self._dim)
