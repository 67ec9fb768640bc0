"""Does xling flag the questions where one language's answer is substantive and the other's is not?

Builds a replay file at run time from ../shared/data/speechmap-judged-dev (real answers of
deepseek-r1 and perplexity r1-1776 to the same 50 requests in English and Chinese, each labelled
by an LLM judge: COMPLETE / EVASIVE / DENIAL), runs `xling compare --model replay/...` with the
default offline classifier, and compares the questions xling flags with a refusal or
official-line asymmetry against the questions where the judge called one language's answer
COMPLETE and the other's not. Those answers are for measurement only; nothing is copied.

    python benchmarks/replay_divergence.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("XLING_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
MODELS = ("deepseek_deepseek-r1", "perplexity_r1-1776")
LABEL_FLAGS = {"refusal_asymmetry", "official_line_asymmetry"}


def build_replay(path: Path) -> dict[tuple[str, str, str], str]:
    judged, lines = {}, []
    for model in MODELS:
        for lang, prefix in (("en", "compliance_china_criticism_"), ("zh", "compliance_zh_china_criticism_")):
            for line in (DATA / "speechmap-judged-dev" / f"{prefix}{model}.jsonl").open(encoding="utf-8"):
                item = json.loads(line)
                if item["compliance"] not in ("COMPLETE", "EVASIVE", "DENIAL"):
                    continue  # the provider blocked the answer: no text to judge
                lines.append(json.dumps({"model": model, "prompt_id": item["question_id"], "lang": lang,
                                         "prompt": item["question"],
                                         "response": item["response"]["choices"][0]["message"]["content"] or ""},
                                        ensure_ascii=False))
                judged[(model, item["question_id"], lang)] = item["compliance"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return judged


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from xling.config import CompareConfig
    from xling.pipeline import compare
    from xling.stats import Rate

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "speechmap.jsonl"
        judged = build_replay(file)
        # Label flags need no translation or embeddings: the fast fakes stand in for them here.
        report = compare(CompareConfig(models=(f"replay/{file}",), out=Path(tmp) / "run", translator="none",
                                       embedder_translated="fake", embedder_original="fake"))
    table = Table(title="Questions with a substantive answer in one language only (judge) vs xling's flags")
    for column in ("model", "judge: asymmetric", "xling flagged", "both", "precision (95% Wilson)",
                   "recall (95% Wilson)"):
        table.add_column(column, justify="right")
    for model in MODELS:
        address = next(m for m in report["models"] if m.endswith("#" + model))
        ids = {pid for (m, pid, _) in judged if m == model}
        truth = {pid for pid in ids if (model, pid, "en") in judged and (model, pid, "zh") in judged
                 and (judged[(model, pid, "en")] == "COMPLETE") != (judged[(model, pid, "zh")] == "COMPLETE")}
        flagged = {f["prompt_id"] for f in report["flags"] if f["model"] == address and f["type"] in LABEL_FLAGS}
        both = truth & flagged
        # With 16 or 17 questions, one flag moves a figure by 0.06: hence the intervals.
        table.add_row(model, str(len(truth)), str(len(flagged)), str(len(both)),
                      Rate(len(both), len(flagged)).text(), Rate(len(both), len(truth)).text())
    console = Console(width=None if sys.stdout.isatty() else 120)  # the model names whole in a file
    console.print(table)
    console.print(f"classifier: {report['signature'].split('classifier:')[1].split('|')[0]}")


if __name__ == "__main__":
    main()
