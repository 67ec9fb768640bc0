"""How far to trust an LLM judge before letting it label a run (`xling compare --judge ...`).

Scores a judge against SpeechMap's judge on real judged answers, beside xling's default offline
classifier on the same answers: a stratified sample (seeded, up to --per-class answers of each
judge class, in English and in Chinese) of the dev set (speechmap-judged-dev: deepseek-r1 and
r1-1776, whose answers the classifier never saw; it has 3-4 refusals a language, so their recall
rests on those), or of any judged answers in SpeechMap's shape (--judged PATH). Nothing here is fitted or chosen. Each answer is cut to its first --chars characters, for the judge and the classifier
alike, so a CPU judge can carry it; the gold label is the judge's on the whole answer.

Verdicts are cached per judge (~/.cache/xling/benchmarks/judge-*.json, written after each answer),
so a run that is stopped goes on where it stopped.

Usage: python benchmarks/judge.py --judge PROVIDER/MODEL [-M key=value] [--per-class 8] [--chars 1500]
                                  [--judged PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time

from rich.console import Console
from rich.table import Table

import classify as measure  # benchmarks/classify.py: the same scores as every classifier figure
from xling.backends.bundled import cache_dir
from xling.detect.classify import classify_many, signed_classifier_name
from xling.backends import BackendError
from xling.detect.judge import NO_VERDICT, JudgeItem, LLMJudge
from xling.detect.judged import benchmark_answers, judged_option
from xling.schema import Label


def sample(judged: list, per_class: int, seed: int) -> list:
    """Up to per_class judged answers of each (language, judge class), seeded."""
    groups: dict[tuple[str, str], list] = {}
    for row in judged:
        if row.answer.strip():
            groups.setdefault((row.lang, row.gold), []).append(row)
    rng = random.Random(seed)
    return [row for key in sorted(groups) for row in rng.sample(groups[key], min(per_class, len(groups[key])))]


def judge_cached(judge: LLMJudge, items: list[JudgeItem]) -> list[str]:
    """The judge's labels (xling labels), cached by judge name and item. A request the provider
    blocked or that failed is ``uncertain`` here and not cached, so a rerun asks again."""
    path = cache_dir() / "benchmarks" / f"judge-{hashlib.sha256(judge.name.encode()).hexdigest()[:12]}.json"
    cache = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    keys = [hashlib.sha256(json.dumps(item, ensure_ascii=False).encode()).hexdigest() for item in items]
    todo = {key: item for key, item in zip(keys, items) if key not in cache}
    todo_keys = list(todo)
    failed: set[str] = set()
    started, done = time.perf_counter(), 0
    # judge_stream keeps a server judge's connections busy; each group is saved as it arrives.
    for group in judge.judge_stream(list(todo.values())):
        for index, verdict in group:
            key = todo_keys[index]
            if verdict.evidence.startswith(NO_VERDICT):
                failed.add(key)
            else:
                cache[key] = [verdict.label.value, verdict.evidence]
        done += len(group)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, ensure_ascii=False), encoding="utf-8")  # kill-safe
        print(f"  judged {done}/{len(todo)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if failed:
        print(f"  {len(failed)} requests got no verdict (blocked or failed): uncertain here, asked again next run",
              file=sys.stderr)
    return ["uncertain" if key in failed else cache[key][0] for key in keys]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", required=True, help="the judge model, PROVIDER/MODEL as for xling compare")
    parser.add_argument("-M", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="judge backend option, repeatable (e.g. -M base_url=http://127.0.0.1:8000/v1)")
    parser.add_argument("--per-class", type=int, default=8,
                        help="answers per language and judge class (default 8: 39 answers, as dev has 3-4 refusals a language)")
    parser.add_argument("--chars", type=int, default=1500, help="characters of each answer given (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    judged_option(parser)
    args = parser.parse_args()

    rows = sample(benchmark_answers(args.judged), args.per_class, args.seed)
    items = [JudgeItem(r.question, r.answer[:args.chars], r.lang) for r in rows]
    if any("=" not in option for option in args.options):
        parser.error("-M takes KEY=VALUE")
    try:
        judge = LLMJudge(args.judge, options=dict(option.split("=", 1) for option in args.options))
        try:
            judged = judge_cached(judge, items)
        finally:
            judge.close()
    except BackendError as err:  # a wrong address, an unreachable server: its message says the fix
        raise SystemExit(f"benchmarks/judge.py: {err}") from None
    offline = [c.label.value for c in classify_many([i.answer for i in items], [i.lang for i in items],
                                                   questions=[i.question for i in items])]

    console = Console() if sys.stdout.isatty() else Console(width=110)  # a log keeps the table whole
    console.print(f"[bold]{judge.name}[/] against SpeechMap's judge on {len(rows)} answers of {args.judged.name} "
                  f"(first {args.chars} characters), beside xling's offline default, {signed_classifier_name()}")
    table = Table(caption="agreement: substantive vs not; recall (n) per judge class; unc.: uncertain")
    for column in ("lang", "labeller", "accuracy", "agreement", "macro-F1",
                   "substantive", "refusal", "evasion/official", "unc."):
        table.add_column(column, no_wrap=True)
    for lang in ("en", "zh"):
        index = [k for k, r in enumerate(rows) if r.lang == lang]
        gold = [measure.FROM_LEARNED[rows[k].gold] for k in index]
        for name, labels in (("judge", judged), ("xling", offline)):
            pred = [measure.to_class(Label(labels[k])) for k in index]
            s = measure.score(gold, pred)
            table.add_row(lang, name, f"{s.accuracy:.2f}", f"{s.agreement:.2f}", f"{s.macro_f1:.2f}",
                          *(f"{s.per_class[c][1]:.2f} ({s.per_class[c][3]})" for c in measure.CLASSES),
                          f"{sum(p == 'uncertain' for p in pred) / len(pred):.0%}")
    console.print(table)


if __name__ == "__main__":
    main()
