"""Which translator keeps meaning within the CPU budget?

Each translator back-translates, into English, zh and ja texts that have an English reference:
  - ``questions``: a spread sample of the core bank's questions (every STEP-th);
  - ``facts``: the key facts of the same questions;
  - ``passages``: answer-length passages written for xling with independent English references
    (benchmarks/data/passages.jsonl).
For each: chrF against the references (sacrebleu, corpus), the share passing the checks of
xling/translate/checks.py, and seconds per text (wall clock on this machine, batch time / batch
size; cached translations keep the seconds measured when they were made). Also the 5th percentile
of all-MiniLM-L6-v2 similarity between a back-translated question and its English twin: the
one-sample threshold of the back-translation signal (TRANSLATED_THRESHOLDS in
xling/compare/similarity.py).

Translations are cached in $XLING_CACHE/benchmarks (default ~/.cache/xling/benchmarks), so a second
run costs nothing; benchmarks/semantic_divergence.py reads the same cache.

    nice -n 10 python benchmarks/translators.py                 # the bundled 0.5B (the default)
    nice -n 10 python benchmarks/translators.py llm:hf/bundled:qwen2.5-coder-1.5b-instruct --sample 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xling.compare.chrf import corpus_chrf  # noqa: E402
from xling.translate.checks import check_translation  # noqa: E402

PASSAGES = ROOT / "benchmarks" / "data" / "passages.jsonl"
STEP = 9  # every 9th of the 216 core questions: 24 questions per language


def cache_dir() -> Path:
    from xling.backends.bundled import cache_dir as xling_cache

    return Path(os.environ.get("XLING_CACHE", xling_cache())) / "benchmarks"


def test_sets(sample: int | None = None) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """set -> lang -> [(source text, English reference)]."""
    rows = {lang: {json.loads(line)["id"]: json.loads(line) for line in
                   (ROOT / "prompts" / lang / "core.jsonl").open(encoding="utf-8") if line.strip()}
            for lang in ("zh", "en", "ja")}
    ids = [pid for pid in list(rows["en"])[::STEP] if pid in rows["zh"] and pid in rows["ja"]]
    passages = [json.loads(line) for line in PASSAGES.open(encoding="utf-8") if line.strip()]
    sets: dict[str, dict[str, list[tuple[str, str]]]] = {"questions": {}, "facts": {}, "passages": {}}
    for lang in ("zh", "ja"):
        sets["questions"][lang] = [(rows[lang][pid]["text"], rows["en"][pid]["text"]) for pid in ids]
        sets["facts"][lang] = [(fact, english) for pid in ids
                               if len(rows[lang][pid].get("key_facts", [])) == len(rows["en"][pid].get("key_facts", []))
                               for fact, english in zip(rows[lang][pid].get("key_facts", []), rows["en"][pid]["key_facts"])]
        sets["passages"][lang] = [(p[lang], p["en"]) for p in passages]
    if sample:
        sets = {name: {lang: items[:sample] for lang, items in by_lang.items()} for name, by_lang in sets.items()}
    return sets


class CachedTranslator:
    """A translator whose translations (and the seconds each took) are kept on disk."""

    def __init__(self, spec: str):
        self.spec = spec
        self.path = cache_dir() / f"translations-{spec.replace('/', '_').replace(':', '_')}.json"
        self.cache = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        self._translator = None

    def _load(self):
        if self._translator is None:
            from xling.pipeline import _make_translator

            self._translator = _make_translator(self.spec, {})
        return self._translator

    def translate(self, texts: list[str], lang: str) -> list[tuple[str, float]]:
        todo = sorted({t for t in texts if f"{lang}\t{t}" not in self.cache}, key=len)
        if todo:
            translator = self._load()
            for start in range(0, len(todo), translator.batch_size):
                batch = todo[start:start + translator.batch_size]
                began = time.perf_counter()
                out = translator.translate(batch, lang)
                seconds = (time.perf_counter() - began) / len(batch)
                for text, english in zip(batch, out):
                    self.cache[f"{lang}\t{text}"] = {"text": english, "seconds": seconds}
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(self.cache, ensure_ascii=False, indent=0), encoding="utf-8")
                print(f"  {self.spec} {lang}: {start + len(batch)}/{len(todo)} new", file=sys.stderr, flush=True)
        return [(self.cache[f"{lang}\t{t}"]["text"], self.cache[f"{lang}\t{t}"]["seconds"]) for t in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("translators", nargs="*", default=["llm"], help="translator specs, as --translator takes them")
    parser.add_argument("--sample", type=int, help="only the first N texts of each set and language")
    args = parser.parse_args()
    sets = test_sets(args.sample)
    from xling.compare.embed import create_embedder

    minilm = create_embedder("minilm")
    pooled: dict[str, list[float]] = {}
    print(f"{'translator':<44} {'set':<10} {'lang':<4} {'n':>3} {'chrF':>6} {'checks ok':>9} {'s/text':>7}  failed checks")
    for spec in args.translators:
        translator = CachedTranslator(spec)
        for name, by_lang in sets.items():
            for lang, items in by_lang.items():
                out = translator.translate([source for source, _ in items], lang)
                checks = [check_translation(source, english, lang) for (source, _), (english, _) in zip(items, out)]
                failed: dict[str, int] = {}
                for check in checks:
                    for what in check.failed:
                        failed[what] = failed.get(what, 0) + 1
                chrf = corpus_chrf([english for english, _ in out], [reference for _, reference in items])
                print(f"{spec:<44} {name:<10} {lang:<4} {len(items):>3} {chrf:>6.1f} "
                      f"{np.mean([c.ok for c in checks]):>9.0%} {np.mean([s for _, s in out]):>7.2f}  "
                      + (", ".join(f"{k} {v}" for k, v in sorted(failed.items())) or "-"))
                if name == "questions":
                    hyp = minilm.embed([english for english, _ in out])
                    ref = minilm.embed([reference for _, reference in items])
                    sims = np.sum(hyp * ref, axis=1)
                    pooled.setdefault(spec, []).extend(sims.tolist())
                    print(f"{'':<44} {'':<10} {lang:<4} MiniLM similarity to the English question: mean "
                          f"{sims.mean():.3f}, p5 {np.quantile(sims, 0.05):.3f}")

    for spec, sims in pooled.items():
        print(f"{spec}: MiniLM similarity of back-translated questions to the English ones, zh and ja pooled: "
              f"p5 {np.quantile(sims, 0.05):.3f} (n {len(sims)})")


if __name__ == "__main__":
    main()
