"""Ordinary prompts make sense: easy ones go budget, hard ones above it (issue 13, item 5).

``data/ordinary_pairs.jsonl`` holds 108 pairs, an easy and a hard prompt of the same kind, across
chat, facts, translation, writing, code, maths, science, law and design, written for this test.
None of them is a row of the router's index: the router's everyday rows (``data/everyday.jsonl``
at the repository root) were written separately, in other words and mostly on other subjects;
the pairs' ``dev`` half was used to choose the everyday settings, the ``heldout`` half was not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import orkestra as o
from orkestra.evaluation.pairs import load_pairs, need_score, pass_rates, route_pairs
from orkestra.routing import default_router
from orkestra.routing.embedder import StaticEmbedder
from orkestra.routing.knn import KNNRouter

PAIRS = Path(__file__).parent / "data" / "ordinary_pairs.jsonl"
EVERYDAY = Path(__file__).resolve().parents[2] / "data" / "everyday.jsonl"
KINDS = {"chat", "facts", "translation", "writing", "code", "maths", "science", "law", "design"}


def test_the_pairs_file_is_what_it_says() -> None:
    pairs = load_pairs(PAIRS)
    assert len(pairs) >= 100
    assert {p.kind for p in pairs} == KINDS
    assert len({p.id for p in pairs}) == len(pairs)
    assert {p.half for p in pairs} == {"dev", "heldout"}
    assert all(p.easy.strip() and p.hard.strip() and p.easy != p.hard for p in pairs)


def test_no_pair_prompt_is_an_index_row() -> None:
    pairs = load_pairs(PAIRS)
    prompts = [p.easy for p in pairs] + [p.hard for p in pairs]
    assert not default_router().index.contains(prompts).any()  # type: ignore[attr-defined]
    everyday = {json.loads(line)["prompt"] for line in EVERYDAY.read_text().splitlines()}
    assert everyday.isdisjoint(prompts)
    # Nor a near copy: no everyday row is within cosine 0.92 of a pair's prompt.
    embedder = StaticEmbedder.default()
    sims = embedder.encode(prompts) @ embedder.encode(sorted(everyday)).T
    assert float(sims.max()) < 0.92


@pytest.mark.parametrize("name", ["google", "anthropic", "openai"])
def test_ordinary_pairs_route_sensibly_at_the_default_knob(name: str) -> None:
    outcomes = route_pairs(o.Provider(name), load_pairs(PAIRS))
    easy, hard, ranked, n = pass_rates(outcomes)["all"]
    failures = [
        f"{x.pair.id}: easy→{x.easy.tier} ({need_score(x.easy):.3f}), "
        f"hard→{x.hard.tier} ({need_score(x.hard):.3f})"
        for x in outcomes
        if not (x.easy_to_budget and x.hard_above_budget and x.ranked)
    ]
    detail = "\n".join(failures)
    assert easy >= 0.9, f"easy → budget {easy:.2f} of {n}\n{detail}"
    assert hard >= 0.9, f"hard → above budget {hard:.2f} of {n}\n{detail}"
    assert ranked >= 0.9, f"hard ranked above easy {ranked:.2f} of {n}\n{detail}"


@pytest.mark.parametrize(
    ("prompt", "tiers"),
    [
        ("What is 2+2?", {"budget"}),
        ("Write a haiku about autumn", {"budget"}),
        ("Explain quantum computing", {"budget"}),
        (
            "Design a byzantine-fault-tolerant consensus algorithm and prove its safety",
            {"balanced", "premium"},
        ),
    ],
)
def test_the_prompts_issue_13_named(prompt: str, tiers: set[str]) -> None:
    for name in ("google", "anthropic", "openai"):
        assert o.Provider(name).route(prompt).tier in tiers


def test_the_gate_tells_everyday_prompts_from_benchmark_questions() -> None:
    router = default_router()
    assert isinstance(router, KNNRouter)
    chat = ["Hi! How are you doing today?", "Can you recommend a good book for the beach?"]
    exam = [
        "Which of the following is a function of the liver? A. producing insulin B. storing "
        "glycogen C. pumping blood D. filtering air Answer:",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
        "in May. How many clips did Natalia sell altogether in April and May?",
    ]
    assert min(router.everyday_share(p) for p in chat) > 0.8
    assert max(router.everyday_share(p) for p in exam) < 0.5
    decision = o.Provider("google").route(chat[0])
    assert any(n.task.startswith("orkestra_everyday:") for n in decision.neighbors)


def test_benchmark_questions_keep_the_benchmark_verdict() -> None:
    """The gate leans on the outcome rows for an exam question, and the decision is the one an
    index without everyday rows makes."""
    router = default_router()
    assert isinstance(router, KNNRouter)
    question = (
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q. "
        "A. 0 B. 4 C. 2 D. 6 Answer:"
    )
    assert router.everyday_share(question) < 0.3
    outcome_only = KNNRouter(router.index, everyday_prior=-50.0)
    assert outcome_only.everyday_share(question) < 1e-6
    with_everyday = o.Provider("google", router=router).route(question)
    without = o.Provider("google", router=outcome_only).route(question)
    assert with_everyday.tier == without.tier
