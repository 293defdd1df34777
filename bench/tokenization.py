"""The static embedder's tokenization: the word-by-word shortcut against the bundled tokenizer.

    .venv/bin/python bench/tokenization.py [--data-dir ../shared/data] [--sample 2000]

Over every distinct prompt of the shared outcome data (``*.jsonl``), checks that the shortcut
(``orkestra.routing.wordpiece``) gives the tokenizer's ids exactly, and counts the prompts that
differ (this must print 0). Then times both on a sample of the prompts, one prompt per call as a
routing decision tokenizes it, in a fresh process (the shortcut's word cache starts empty): p50
and p99 per call, and the ratio, with the p99 over the longest tenth of the sample apart.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from orkestra.routing.embedder import StaticEmbedder

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--sample", type=int, default=2000)
    args = ap.parse_args()
    texts: list[str] = []
    for path in sorted(args.data_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            texts += [json.loads(line)["prompt"] for line in f]
    texts = list(dict.fromkeys(texts))
    embedder = StaticEmbedder.default()
    loaded = embedder._load()
    words, tokenizer = loaded.words, loaded.tokenizer
    assert words is not None, "the bundled tokenizer should get the shortcut"

    def full(text: str) -> list[int]:
        return list(tokenizer.encode_batch_fast([text], add_special_tokens=False)[0].ids)

    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), min(args.sample, len(texts)), False)]
    timings = {"tokenizer": [], "shortcut": []}  # type: dict[str, list[float]]
    for text in sample:  # timed first, while the shortcut's cache is cold
        cut = embedder._cut(text)
        for name, fn in (("shortcut", words.ids), ("tokenizer", full)):
            start = time.perf_counter()
            fn(cut)
            timings[name].append((time.perf_counter() - start) * 1000)
    differ = sum(words.ids(embedder._cut(t)) != full(embedder._cut(t)) for t in texts)
    non_ascii = sum(not t.isascii() for t in texts)
    print(f"{len(texts):,} distinct prompts ({non_ascii:,} not plain ASCII): {differ} differ")
    lengths = np.array([len(t) for t in sample])
    longest = lengths >= np.percentile(lengths, 90)
    print(f"one prompt per call, {len(sample):,} prompts (median {int(np.median(lengths))} chars)")
    print("| path | p50 ms | p99 ms | p99 ms, longest tenth |")
    print("|---|---:|---:|---:|")
    for name in ("tokenizer", "shortcut"):
        ms = np.array(timings[name])
        print(
            f"| {name} | {np.percentile(ms, 50):.3f} | {np.percentile(ms, 99):.3f} "
            f"| {np.percentile(ms[longest], 99):.3f} |"
        )
    a, b = np.array(timings["tokenizer"]), np.array(timings["shortcut"])
    print(
        f"tokenizer / shortcut: p50 {np.percentile(a, 50) / np.percentile(b, 50):.1f}x, "
        f"p99 {np.percentile(a, 99) / np.percentile(b, 99):.1f}x"
    )


if __name__ == "__main__":
    main()
