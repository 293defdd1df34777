"""The KNN router with the real bundled embedder and index: decisions, artifacts, calibration."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import orkestra as o
from orkestra.routing import default_router
from orkestra.routing.artifacts import DEFAULT_ROUTER_DIR
from orkestra.routing.data import OutcomeRow, load_rows
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.index import KNNIndex
from orkestra.routing.knn import KNNRouter
from orkestra.routing.train import build_index

JAPAN = "What is the capital of Japan?"
BTREE = (
    "Implement a B-tree with insert and search in Python. Handle node splitting, maintain "
    "sorted keys, and include a method to print the tree level by level."
)


def _rows(n: int = 60) -> list[OutcomeRow]:
    """Two kinds of prompts: trivia the weak model gets right, proofs only the strong one does."""
    rows = []
    for i in range(n):
        easy = i % 2 == 0
        prompt = (
            f"What is the capital city of country number {i}?"
            if easy
            else f"Prove that the sum of the first {i} odd numbers is a perfect square, rigorously."
        )
        rows.append(
            OutcomeRow(
                id=str(i),
                source="routellm",
                task="trivia" if easy else "proof",
                prompt=prompt,
                scores={
                    "mistralai/Mixtral-8x7B-Instruct-v0.1": 1.0 if easy else 0.0,
                    "gpt-4-1106-preview": 1.0,
                },
                split="train",
            )
        )
    return rows


@pytest.fixture(scope="module")
def small_router() -> KNNRouter:
    index = build_index(_rows(), StaticEmbedder.default(), n_clusters=4)
    return KNNRouter(index, k=10, nprobe=4, default_knob=0.9)


def test_default_router_predicts_every_tier() -> None:
    prediction = default_router().predict(JAPAN)
    assert set(prediction.scores) == set(o.TIERS)
    assert all(0.0 <= s <= 1.0 for s in prediction.scores.values())
    assert len(prediction.neighbors) == 5
    assert prediction.neighbors[0].similarity >= prediction.neighbors[-1].similarity
    assert prediction.latency_ms > 0


@pytest.mark.parametrize("name", ["google", "anthropic", "openai"])
def test_seed_prompts_at_the_default_knob(name: str) -> None:
    provider = o.Provider(name)
    assert provider.route(JAPAN).tier == "budget"
    # The data puts a B-tree implementation next to MBPP-style coding tasks, where the
    # balanced data model is close to the premium one: not budget, at least.
    assert provider.route(BTREE).tier in ("balanced", "premium")


def test_knob_extremes(small_router: KNNRouter) -> None:
    provider = o.Provider("google", router=small_router)
    hard = "Prove that the sum of the first 7 odd numbers is a perfect square, rigorously."
    assert provider.route(hard, quality=0.0).tier == "budget"
    assert provider.route(hard, quality=1.0).tier == "premium"
    assert provider.route("What is the capital city of country number 3?").tier == "budget"
    assert provider.route(hard).tier == "premium"
    with pytest.raises(o.InvalidRequestError):
        provider.route(hard, quality=1.5)


def test_decision_explains_itself(small_router: KNNRouter) -> None:
    decision = o.Provider("openai", router=small_router).route("What is the capital of France?")
    assert decision.neighbors and decision.neighbors[0].task == "routellm:trivia"
    assert len(decision.candidates) == 3
    assert {c.tier for c in decision.candidates} == set(o.TIERS)
    assert decision.knob == 0.9
    assert decision.reason


class CountingEmbedder:
    """The real embedder, counting its calls (to check one embedding per request)."""

    def __init__(self) -> None:
        self.inner = StaticEmbedder.default()
        self.calls = 0

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # type: ignore[type-arg]
        self.calls += 1
        return self.inner.encode(texts)


def test_multi_provider_embeds_once() -> None:
    embedder = CountingEmbedder()
    router = KNNRouter(KNNIndex.load(DEFAULT_ROUTER_DIR), embedder)
    multi = o.MultiProvider(
        [o.Provider(n, router=router) for n in ("google", "anthropic", "openai")]
    )
    multi.route(BTREE, strategy="smartest")
    assert embedder.calls == 1


def test_index_refuses_another_embedder(small_router: KNNRouter) -> None:
    class Other(CountingEmbedder):
        @property
        def id(self) -> str:
            return "some-other-embedder"

    with pytest.raises(o.DataFormatError, match="some-other-embedder"):
        KNNRouter(small_router.index, Other())


def test_save_load_roundtrip_is_exact_and_deterministic(
    tmp_path: Path, small_router: KNNRouter
) -> None:
    first = small_router.index.save(tmp_path / "a")
    again = build_index(_rows(), StaticEmbedder.default(), n_clusters=4).save(tmp_path / "b")
    for name in ("index.npz", "meta.json", "manifest.json"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    loaded = KNNRouter(KNNIndex.load(first), k=10, nprobe=4)
    prompt = "Prove that 2 is prime."
    assert loaded.predict(prompt).scores == pytest.approx(
        small_router.predict(prompt).scores, abs=1e-3
    )
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["embedder"]["id"] == StaticEmbedder.default().id
    assert manifest["rows"] == 60


def test_corrupt_or_truncated_index_is_refused(tmp_path: Path, small_router: KNNRouter) -> None:
    folder = small_router.index.save(tmp_path / "r")
    data = (folder / "index.npz").read_bytes()
    (folder / "index.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(o.DataFormatError, match="sha256"):
        KNNIndex.load(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(o.DataFormatError, match="malformed"):
        KNNIndex.load(folder)
    with pytest.raises(o.DataFormatError, match="not a router"):
        KNNIndex.load(tmp_path)


def test_calibrate_hits_the_premium_share(small_router: KNNRouter) -> None:
    prompts = [r.prompt for r in _rows(40)]
    knob = small_router.calibrate(prompts, premium_share=0.5)
    provider = o.Provider("google", router=small_router)
    share = np.mean([provider.route(p).tier == "premium" for p in prompts])
    assert small_router.default_knob == knob
    assert share == pytest.approx(0.5, abs=0.05)


def test_index_knows_its_own_prompts(small_router: KNNRouter) -> None:
    mask = small_router.index.contains([_rows()[3].prompt, "not in the index"])
    assert mask.tolist() == [True, False]


# -- downloads ---------------------------------------------------------------------------


@pytest.fixture
def archive_server(tmp_path: Path, small_router: KNNRouter) -> Iterator[tuple[str, str, list[str]]]:
    folder = small_router.index.save(tmp_path / "router")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        t.add(folder, arcname="router")
    payload = buffer.getvalue()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/router.tar.gz"
    yield url, hashlib.sha256(payload).hexdigest(), hits
    server.shutdown()
    server.server_close()


def test_load_from_url_verifies_and_caches(archive_server: tuple[str, str, list[str]]) -> None:
    url, sha, hits = archive_server
    router = KNNRouter.load(url, sha256=sha, k=10, nprobe=4)
    assert router.index.size == 60
    KNNRouter.load(url, sha256=sha)
    assert len(hits) == 1  # the second load used the cache


def test_load_from_url_rejects_a_wrong_hash(archive_server: tuple[str, str, list[str]]) -> None:
    url, _, _ = archive_server
    with pytest.raises(o.DataFormatError, match="sha256"):
        KNNRouter.load(url, sha256="0" * 64)


def test_plain_http_is_refused_except_loopback() -> None:
    with pytest.raises(o.ConfigurationError, match="https"):
        KNNRouter.load("http://example.com/router.tar.gz", sha256="0" * 64)
    with pytest.raises(o.ConfigurationError, match="sha256"):
        KNNRouter.load("https://example.com/router.tar.gz")


# -- data files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "1"}', "missing field"),
        (
            '{"id":"1","source":"s","task":"t","prompt":"p","split":"train","scores":{"m":1.5}}',
            "must be in",
        ),
        (
            '{"id":"1","source":"s","task":"t","prompt":"p","split":"dev","scores":{"m":1}}',
            "split",
        ),
    ],
)
def test_malformed_data_names_file_and_line(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "data.jsonl"
    good = '{"id":"0","source":"s","task":"t","prompt":"p","split":"train","scores":{"m":1}}'
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(o.DataFormatError, match=match) as info:
        load_rows(path)
    assert "data.jsonl:2" in str(info.value)


def test_default_router_files_match_their_manifest(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_ROUTER_DIR, tmp_path / "copy")
    index = KNNIndex.load(tmp_path / "copy")
    assert index.size == json.loads((DEFAULT_ROUTER_DIR / "manifest.json").read_text())["rows"]


def test_sentence_transformers_embedder_names_its_extra() -> None:
    import importlib.util

    from orkestra.routing.embedders_extra import SentenceTransformerEmbedder

    if importlib.util.find_spec("sentence_transformers") is not None:
        pytest.skip("sentence-transformers is installed; the missing-extra message can't show")
    with pytest.raises(ImportError, match=r"orkestra-router\[st\]"):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2")


def test_multi_provider_knob(small_router: KNNRouter) -> None:
    hard = "Prove that the sum of the first 7 odd numbers is a perfect square, rigorously."
    providers = [o.Provider(n, router=small_router) for n in ("google", "openai")]
    assert o.MultiProvider(providers, quality=0.0).route(hard).tier == "budget"
    assert o.MultiProvider(providers, quality=1.0).route(hard).tier == "premium"
    assert o.MultiProvider(providers, quality=0.0).route(hard, quality=1.0).tier == "premium"
    with pytest.raises(o.InvalidRequestError):
        o.MultiProvider(providers, quality=2)


# -- everyday rows and the gate (index format 2) -------------------------------------------


def _everyday_rows(n: int = 30) -> list[OutcomeRow]:
    """Chatty prompts labelled routine by the rubric: every tier does as well."""
    greetings = ("Hello there, how are you", "Thanks a lot, see you soon", "Good morning to you")
    return [
        OutcomeRow(
            id=f"e{i}",
            source="orkestra_everyday",
            task="chat",
            prompt=f"{greetings[i % 3]}, friend number {i}!",
            scores={"rubric:budget": 0.97, "rubric:balanced": 0.98, "rubric:premium": 0.98},
            split="train",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def everyday_router() -> KNNRouter:
    index = build_index(_rows() + _everyday_rows(), StaticEmbedder.default(), n_clusters=4)
    return KNNRouter(index, k=10, nprobe=4, everyday_k=5, default_knob=0.9)


def test_everyday_rows_follow_the_clusters_and_feed_the_gate(everyday_router: KNNRouter) -> None:
    index = everyday_router.index
    assert (index.outcome_size, index.everyday_size) == (60, 30)
    assert index.gate is not None and index.gate.shape == (StaticEmbedder.default().dim + 2,)
    assert index.manifest["everyday"]["rows"] == 30
    tasks = {index.tasks[t] for t in index.task_ids[index.outcome_size :]}
    assert tasks == {"orkestra_everyday:chat"}
    query = StaticEmbedder.default().encode(["Hello there, my friend!"])[0]
    rows, _ = index.search_everyday(query, 5)
    assert len(rows) == 5 and (rows >= index.outcome_size).all()
    rows, _ = index.search(query, 100, 4)
    assert (rows < index.outcome_size).all()  # the IVF search never returns an everyday row
    chatty, proof = "Hello there, how are you, my friend?", _rows()[1].prompt
    assert everyday_router.everyday_share(chatty) > 0.5 > everyday_router.everyday_share(proof)
    assert o.Provider("google", router=everyday_router).route(proof).tier == "premium"


def test_everyday_index_round_trip_is_exact(tmp_path: Path, everyday_router: KNNRouter) -> None:
    first = everyday_router.index.save(tmp_path / "a")
    again = build_index(_rows() + _everyday_rows(), StaticEmbedder.default(), n_clusters=4)
    second = again.save(tmp_path / "b")
    for name in ("index.npz", "meta.json", "manifest.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    loaded = KNNRouter(KNNIndex.load(first), k=10, nprobe=4, everyday_k=5)
    prompt = "Thanks a lot, see you tomorrow!"
    assert loaded.predict(prompt).scores == pytest.approx(
        everyday_router.predict(prompt).scores, abs=1e-3
    )


def test_a_format_1_index_still_loads(tmp_path: Path, small_router: KNNRouter) -> None:
    folder = small_router.index.save(tmp_path / "v1")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    index = KNNIndex.load(folder)
    assert index.everyday_size == 0 and index.gate is None


def test_a_gate_that_does_not_fit_is_refused(tmp_path: Path, everyday_router: KNNRouter) -> None:
    folder = everyday_router.index.save(tmp_path / "bad")
    with np.load(folder / "index.npz") as z:
        arrays = {name: z[name] for name in z.files}
    arrays["gate"] = arrays["gate"][:-1]
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    (folder / "index.npz").write_bytes(buffer.getvalue())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["index.npz"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(o.DataFormatError, match="gate"):
        KNNIndex.load(folder)
