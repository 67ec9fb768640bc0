"""How far can the "different content across languages" flag be trusted?

Answer pairs whose relation is known, from the passages written for xling
(benchmarks/data/passages.jsonl: eight questions of the bank, each answered in zh and ja, with a
faithful English translation, an independent English answer with the same content, and an English
answer stating the opposite position):

  - same content: the zh / ja answer against its faithful English translation, and against the
    independent English answer;
  - different content: the zh / ja answer against the English answer stating the opposite
    position, and against the English answer to another question.

Each pair is scored as xling compare scores one (multilingual USE on the originals; all-MiniLM-L6-v2
on the back-translation of the zh / ja answer against the English one) and flagged with the
thresholds of a one-sample run (no re-rolls: the measured thresholds of xling/compare/similarity.py,
set on the bank's questions, not on these pairs). Printed: the flag's precision and recall with the
default translator (the bundled model) and with ``none``, and, for comparison, the flag as it was
before (back-translation similarity alone, with the same measured threshold).

The sentence-alignment signal (each sentence matched to its nearest in the other answer) was
developed, and its threshold set, on separate design pairs written the same way on eight other
bank topics (benchmarks/data/design_passages.jsonl, ``--design``); the evaluation passages were
read once, after.

Back-translations come from the cache of benchmarks/translators.py (made on first use).

    nice -n 10 python benchmarks/semantic_divergence.py            # evaluation pairs
    nice -n 10 python benchmarks/semantic_divergence.py --design   # design pairs
    nice -n 10 python benchmarks/semantic_divergence.py --translator none
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from translators import PASSAGES, CachedTranslator  # noqa: E402

from xling.compare.embed import create_embedder  # noqa: E402
from xling.compare.similarity import (PairScore, Threshold, Thresholds, calibrate_model, different_content,  # noqa: E402
                                     embed_sentences, sentence_alignment)

DESIGN = ROOT / "benchmarks" / "data" / "design_passages.jsonl"
from xling.translate.checks import check_translation  # noqa: E402


def known_pairs(path: Path = PASSAGES) -> list[dict]:
    """(lang, source answer, English answer, relation, kind) for every known pair."""
    passages = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    pairs = []
    for index, passage in enumerate(passages):
        other = passages[(index + 1) % len(passages)]
        for lang in ("zh", "ja"):
            for english, different, kind in ((passage["en"], False, "faithful translation"),
                                             (passage["en_independent"], False, "independent, same content"),
                                             (passage["en_opposite"], True, "opposite position"),
                                             (other["en"], True, "another question")):
                pairs.append({"id": passage["id"], "lang": lang, "source": passage[lang], "english": english,
                              "different": different, "kind": kind})
    return pairs


def precision_recall(predicted: list[bool], truth: list[bool]) -> tuple[float, float]:
    tp = sum(p and t for p, t in zip(predicted, truth))
    fp = sum(p and not t for p, t in zip(predicted, truth))
    fn = sum(t and not p for p, t in zip(predicted, truth))
    return (tp / (tp + fp) if tp + fp else float("nan")), (tp / (tp + fn) if tp + fn else float("nan"))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", action="store_true", help="the design pairs (thresholds were set on them)")
    parser.add_argument("--translator", action="append", help="translator spec(s); default llm and none")
    args = parser.parse_args()
    pairs = known_pairs(DESIGN if args.design else PASSAGES)
    use, minilm = create_embedder("use-multilingual"), create_embedder("minilm")
    original = np.sum(use.embed([p["source"] for p in pairs]) * use.embed([p["english"] for p in pairs]), axis=1)
    sources = embed_sentences([p["source"] for p in pairs], [p["lang"] for p in pairs], use.embed)
    englishes = embed_sentences([p["english"] for p in pairs], ["en"] * len(pairs), use.embed)
    aligned = [sentence_alignment(a, b) for a, b in zip(sources, englishes)]
    for kind in dict.fromkeys(p["kind"] for p in pairs):
        values = [x for x, p in zip(aligned, pairs) if p["kind"] == kind]
        cos = [x for x, p in zip(original, pairs) if p["kind"] == kind]
        print(f"{kind:<28} sentence alignment {min(values):.2f}-{max(values):.2f}, whole-answer cosine "
              f"{min(cos):.2f}-{max(cos):.2f}")
    truth = [p["different"] for p in pairs]
    kinds = list(dict.fromkeys(p["kind"] for p in pairs))
    print(f"{len(pairs)} known pairs: {sum(truth)} different content, {len(truth) - sum(truth)} same\n")
    print(f"{'configuration':<52} {'precision':>9} {'recall':>7} {'doubtful':>9}  flagged per kind")
    for spec in args.translator or ("llm", "none"):
        if spec == "none":
            translated = [p["source"] for p in pairs]
            doubtful = [False] * len(pairs)
        else:
            cached = CachedTranslator(spec)
            translated = []
            for p in pairs:
                translated.append(cached.translate([p["source"]], p["lang"])[0][0])
            doubtful = [not check_translation(p["source"], t, p["lang"]).ok for p, t in zip(pairs, translated)]
        sim_translated = np.sum(minilm.embed(translated) * minilm.embed([p["english"] for p in pairs]), axis=1)
        thresholds = calibrate_model({}, use.name, None if spec == "none" else minilm.name, sentences=True)
        scores = [PairScore("m", p["id"], (p["lang"], "en"), float(t), float(o), 0.0, a)
                  for p, t, o, a in zip(pairs, sim_translated, original, aligned)]
        signals = [different_content(s, thresholds) for s in scores]
        whole_only = replace(thresholds, sentences=None)
        configurations = [(f"--translator {spec}: originals + sentences (+ bt)", [bool(x) for x in signals]),
                          (f"--translator {spec}: whole originals only (before)",
                           [bool(different_content(s, whole_only)) for s in scores])]
        if spec != "none":
            # The flag before: back-translation similarity alone.
            old = Thresholds(Threshold(thresholds.back_translation.value, "", 0))
            configurations.append((f"--translator {spec}: back-translation alone (before)",
                                   [bool(different_content(PairScore("m", s.prompt_id, s.langs, 0.0, s.sim_translated, 0.0),
                                                           old)) for s in scores]))
        for label, predicted in configurations:
            precision, recall = precision_recall(predicted, truth)
            per_kind = ", ".join(f"{kind} {sum(f for f, p in zip(predicted, pairs) if p['kind'] == kind)}/"
                                 f"{sum(p['kind'] == kind for p in pairs)}" for kind in kinds)
            n_doubtful = sum(f and d for f, d in zip(predicted, doubtful))
            print(f"{label:<52} {precision:>9.2f} {recall:>7.2f} {n_doubtful:>4}/{sum(predicted):<4}  {per_kind}")
        by_signals: dict[str, int] = {}
        for x in signals:
            if x:
                by_signals["+".join(x)] = by_signals.get("+".join(x), 0) + 1
        print(f"{'':<52} flags by signals: " + ", ".join(f"{k} {v}" for k, v in sorted(by_signals.items())))
        if spec != "none":
            print(f"{'':<52} back-translations passing the checks: {1 - np.mean(doubtful):.0%}")
    print(f"\nthreshold on originals: {thresholds.original.value:.3f} ({thresholds.original.method})")
    print(f"threshold on sentence alignment: {thresholds.sentences.value:.3f} ({thresholds.sentences.method})")


if __name__ == "__main__":
    main()
