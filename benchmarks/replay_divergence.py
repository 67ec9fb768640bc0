"""Does xling flag the questions where one language's answer is substantive and the other's is not?

Builds a replay file at run time from ../shared/data/speechmap-judged-dev (real answers of
deepseek-r1 and perplexity r1-1776 to the same 50 requests in English and Chinese, each labelled
by an LLM judge: COMPLETE / EVASIVE / DENIAL), runs `xling compare --model replay/...` with the
default offline classifier, and compares the questions xling flags with a refusal or
official-line asymmetry against the questions where the judge called one language's answer
COMPLETE and the other's not. Those answers are for measurement only; nothing is copied.
``--judged PATH`` measures other judged answers in SpeechMap's shape instead (a file or a folder
of compliance_<category>_<model>.jsonl, any number of models).

    python benchmarks/replay_divergence.py [--judged PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from xling.detect.judged import Judged, benchmark_answers, judged_option

LABEL_FLAGS = {"refusal_asymmetry", "official_line_asymmetry"}


def build_replay(answers: list[Judged], path: Path) -> dict[tuple[str, str, str], str]:
    """Write the China-criticism answers in English and Chinese as a replay file; return the
    judge's class of each (model, question id, language)."""
    judged, lines = {}, []
    for a in answers:
        if a.topic != "china_criticism" or a.lang not in ("en", "zh"):
            continue
        lines.append(json.dumps({"model": a.model, "prompt_id": a.question_id, "lang": a.lang,
                                 "prompt": a.question, "response": a.text}, ensure_ascii=False))
        judged[(a.model, a.question_id, a.lang)] = a.gold
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return judged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    judged_option(parser)
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from xling.config import CompareConfig
    from xling.pipeline import compare
    from xling.stats import Rate

    answers = benchmark_answers(args.judged)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "speechmap.jsonl"
        judged = build_replay(answers, file)
        # Label flags need no translation or embeddings: the fast fakes stand in for them here.
        report = compare(CompareConfig(models=(f"replay/{file}",), out=Path(tmp) / "run", translator="none",
                                       embedder_translated="fake", embedder_original="fake"))
    table = Table(title="Questions with a substantive answer in one language only (judge) vs xling's flags")
    for column in ("model", "judge: asymmetric", "xling flagged", "both", "precision (95% Wilson)",
                   "recall (95% Wilson)"):
        table.add_column(column, justify="right")
    models = sorted({m for m, _, _ in judged})
    truth = {(m, pid) for (m, pid, lang) in judged if lang == "en" and (m, pid, "zh") in judged
             and (judged[(m, pid, "en")] == "substantive") != (judged[(m, pid, "zh")] == "substantive")}
    flagged = {(f["model"].rpartition("#")[2], f["prompt_id"]) for f in report["flags"] if f["type"] in LABEL_FLAGS}
    for name, keep in [(m, lambda pair, m=m: pair[0] == m) for m in models] + \
            ([(f"all {len(models)} models", lambda pair: True)] if len(models) > 1 else []):
        mine, said = {p for p in truth if keep(p)}, {p for p in flagged if keep(p)}
        both = mine & said
        # With 16 or 17 questions, one flag moves a figure by 0.06: hence the intervals.
        table.add_row(name, str(len(mine)), str(len(said)), str(len(both)),
                      Rate(len(both), len(said)).text(), Rate(len(both), len(mine)).text())
    console = Console(width=None if sys.stdout.isatty() else 120)  # the model names whole in a file
    console.print(table)
    # Which kind of flag found each request, and which raised the flags the judge does not share
    # (an official line in one language beside a refusal in the other is a divergence a user
    # wants to see, and not one the judge's substantive-or-not counts as asymmetric).
    kinds = Table(title="The same, by kind of flag (all models; a request can have both)")
    for column in ("flag", "xling flagged", "judge: asymmetric too", "precision (95% Wilson)"):
        kinds.add_column(column, justify="right")
    for kind in sorted(LABEL_FLAGS):
        said = {(f["model"].rpartition("#")[2], f["prompt_id"]) for f in report["flags"] if f["type"] == kind}
        kinds.add_row(kind, str(len(said)), str(len(said & truth)), Rate(len(said & truth), len(said)).text())
    console.print(kinds)
    console.print(f"classifier: {report['signature'].split('classifier:')[1].split('|')[0]}")


if __name__ == "__main__":
    main()
