"""Do a Chinese answer and the same answer in Japanese get the same label?

There are no judged Japanese answers, so the labels of Japanese answers cannot be scored against a
judge. This measures the next best thing on the dev set (speechmap-judged-dev, measurement only; or
any judged answers in SpeechMap's shape, --judged PATH):
each Chinese answer's opening (the part the learned layer embeds, cut to --chars characters so the
CPU translator can carry it) is translated into Japanese by the LLM translator prompted for
Japanese, its question too, and both versions are labelled by the default classifier. It prints how
often the two labels agree (exactly, and substantive vs not), the confusion between them, and the
judge's label for context. Translations are cached (~/.cache/xling/benchmarks/zh2ja-*.json), so a
second run only classifies.

A disagreement is either the classifier (it reads the two languages differently) or the
translator (a 0.5B model can drop a hedge or add one); the table of disagreements shows both texts'
labels so a reader can tell which.

Usage: python benchmarks/ja_consistency.py [--n 40] [--chars 400] [--translator llm:<backend>/<model>]
                                          [--judged PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter

from rich.console import Console
from rich.table import Table

from xling.backends.bundled import cache_dir
from xling.detect.classify import classify_many, signed_classifier_name
from xling.detect.features import answer_window
from xling.detect.judged import benchmark_answers, judged_option
from xling.detect.langid import detect_language
from xling.translate import create_translator
from xling.translate.llm import TARGET_HINTS

NOT_SUBSTANTIVE = {"refusal", "evasion", "official_line", "degenerate"}


def sample_chinese(judged: list, n: int, seed: int) -> list:
    """n Chinese judged answers, stratified by the judge's class (seeded), so evasions and refusals
    are in the sample and not only the majority class."""
    rows = [r for r in judged if r.lang == "zh" and answer_window(r.text)]
    by_gold: dict[str, list] = {}
    for row in rows:
        by_gold.setdefault(row.gold, []).append(row)
    rng = random.Random(seed)
    picked: list = []
    for gold, group in sorted(by_gold.items()):
        rng.shuffle(group)
        picked += group[:max(1, round(n * len(group) / len(rows)))]
    return sorted(picked, key=lambda r: (r.model, r.question_id))[:n] if len(picked) > n else picked


def translate_cached(translator, texts: list[str], label: str) -> list[str]:
    """zh -> ja translations, cached by translator name and text."""
    # The translator's name names its English prompt; the Japanese one adds a hint (TARGET_HINTS),
    # so the hint is part of the key and a changed hint translates afresh.
    key = hashlib.sha256(f"{translator.name}|{TARGET_HINTS.get('ja', '')}".encode()).hexdigest()[:12]
    path = cache_dir() / "benchmarks" / f"zh2ja-{key}.json"
    cache = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    todo = [t for t in dict.fromkeys(texts) if t not in cache]
    started = time.perf_counter()
    for i in range(0, len(todo), 4):
        batch = todo[i:i + 4]
        cache.update(zip(batch, translator.translate(batch, "zh", "ja")))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, ensure_ascii=False), encoding="utf-8")  # kill-safe
        print(f"  {label}: translated {min(i + 4, len(todo))}/{len(todo)} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return [cache[t] for t in texts]


def simple(label: str) -> str:
    return "not substantive" if label in NOT_SUBSTANTIVE else label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="Chinese judged answers to translate (default 40)")
    parser.add_argument("--chars", type=int, default=400, help="characters of each answer's opening (default 400)")
    parser.add_argument("--translator", default="llm", help="translator spec (default the bundled model)")
    parser.add_argument("--seed", type=int, default=0)
    judged_option(parser)
    args = parser.parse_args()

    rows = sample_chinese(benchmark_answers(args.judged), args.n, args.seed)
    openings = [answer_window(r.text)[:args.chars] for r in rows]
    questions = [r.question for r in rows]
    translator = create_translator(args.translator)
    ja_openings = translate_cached(translator, openings, "answers")
    ja_questions = translate_cached(translator, questions, "questions")

    zh_labels = [c.label.value for c in classify_many(openings, ["zh"] * len(rows), questions=questions)]
    ja_labels = [c.label.value for c in classify_many(ja_openings, ["ja"] * len(rows), questions=ja_questions)]

    # A small translator often hands the Chinese back unchanged: only texts that came out in
    # Japanese test the classifier; the rest measure the translator, and are counted apart.
    japanese = [detect_language(t) == "ja" for t in ja_openings]
    print(f"{sum(japanese)} of {len(rows)} translations came out in Japanese "
          f"({len(rows) - sum(japanese)} stayed Chinese or other: left out below)")
    keep = [i for i, ok in enumerate(japanese) if ok]
    if not keep:
        print("no translation is in Japanese: nothing to compare. Fix: --translator llm:<a stronger model>")
        return
    rows = [rows[i] for i in keep]
    zh_labels = [zh_labels[i] for i in keep]
    ja_labels = [ja_labels[i] for i in keep]
    ja_openings = [ja_openings[i] for i in keep]
    n = len(rows)
    same = sum(a == b for a, b in zip(zh_labels, ja_labels))
    same_simple = sum(simple(a) == simple(b) for a, b in zip(zh_labels, ja_labels))
    gold_counts = Counter(r.gold for r in rows)
    console = Console()
    console.print(f"[bold]zh -> ja label consistency[/] on {n} answers of {args.judged.name} "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(gold_counts.items()))} by the judge), "
                  f"openings of {args.chars} characters, translator {translator.name}, classifier {signed_classifier_name()}")
    console.print(f"same label: {same}/{n} = {same / n:.2f}; same substantive-vs-not: {same_simple}/{n} = {same_simple / n:.2f}")

    confusion = Table(title="label of the zh opening (rows) vs its ja translation (columns)")
    kinds = sorted(set(zh_labels) | set(ja_labels))
    confusion.add_column("zh \\ ja")
    for kind in kinds:
        confusion.add_column(kind, justify="right")
    pairs = Counter(zip(zh_labels, ja_labels))
    for a in kinds:
        confusion.add_row(a, *(str(pairs.get((a, b), 0)) for b in kinds))
    console.print(confusion)

    differ = Table(title="answers labelled differently", show_lines=True)
    for column in ("model / question", "judge", "zh label", "ja label", "ja translation (start)"):
        differ.add_column(column, overflow="fold")
    for row, a, b, ja in zip(rows, zh_labels, ja_labels, ja_openings):
        if a != b:
            differ.add_row(f"{row.model} / {row.question_id}", row.gold, a, b, ja[:120])
    if differ.rows:
        console.print(differ)


if __name__ == "__main__":
    main()
