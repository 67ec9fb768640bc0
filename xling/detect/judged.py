"""Read SpeechMap's judged answers (../shared/data) for training and measuring the learned layer.

The judge's labels map to the learned layer's three classes: COMPLETE -> substantive, DENIAL ->
refusal, EVASIVE -> non_substantive (an evasion or an official line: the judge has one label for
both). ERROR_* rows (the provider blocked the answer; the judge saw none) are left out.

speechmap-judged-train is for training; speechmap-judged-dev is for measurement only.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from xling.detect.lexicon import strip_reasoning
from xling.errors import XlingError
from xling.importers import speechmap_set

TRAIN = "speechmap-judged-train"
DEV = "speechmap-judged-dev"
CLASSES: tuple[str, ...] = ("substantive", "refusal", "non_substantive")
JUDGE_TO_CLASS = {"COMPLETE": "substantive", "DENIAL": "refusal", "EVASIVE": "non_substantive"}
SOURCE = "xlr8harder/speechmap-data (Apache-2.0)"


@dataclass(frozen=True)
class Judged:
    """One judged answer."""

    model: str
    lang: str  # "en" or "zh"
    topic: str  # china_criticism, us_criticism, ...
    question_id: str
    question: str
    text: str  # the raw answer (reasoning not yet stripped)
    gold: str  # one of CLASSES
    finish_reason: str = ""
    # SpeechMap's earlier judge (GPT-4o) on the same answer, in CLASSES ("" where it has none): two
    # judges' disagreement is the noise a classifier's figures are measured through.
    earlier: str = ""

    @property
    def answer(self) -> str:
        return strip_reasoning(self.text)[0]


def shared_data() -> Path:
    """$XLING_SHARED_DATA, else ../shared/data beside the repository."""
    shared = os.environ.get("XLING_SHARED_DATA")
    return Path(shared) if shared else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def read_judged(path: Path) -> tuple[list[Judged], Counter]:
    """Judged answers from a file or a folder of ``*.jsonl`` files, in either of SpeechMap's shapes.

    - SpeechMap's analysis files (``compliance_[<lang>_]<topic>_<model>.jsonl``, as in
      speechmap-judged-dev): the answer at ``response.choices[0].message.content``, the language
      and topic in ``category`` (``zh_china_criticism``);
    - the compacted rows of speechmap-judged-train (``response`` the answer itself, ``lang``,
      ``topic``).

    The model is the row's own ``model`` with ``/`` made ``_`` (SpeechMap's file names and the
    training split spell it so), so answers of many models in one folder stay apart.

    Returns:
        The judged answers, and a count of the rows left out per (file name, reason): ERROR_*
        verdicts (the provider blocked the answer; the judge saw none).

    Raises:
        XlingError: a line that is not such a row, naming the file, the line and the fix.
    """
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise XlingError(f"no judged answers (*.jsonl) at {path}", "name a SpeechMap analysis file "
                         "(compliance_<category>_<model>.jsonl) or a folder of them")
    out: list[Judged] = []
    left_out: Counter = Counter()
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                judged = _judged(row, file)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
                raise XlingError(f"not a judged answer ({type(error).__name__}: {error})",
                                 "each line is one JSON object with model, question_id, question, response "
                                 "and compliance, as SpeechMap writes them", where=f"{file}:{number}") from None
            if judged is None:
                left_out[(file.name, row["compliance"])] += 1
            else:
                out.append(judged)
    return out, left_out


def _judged(row: dict, file: Path) -> Judged | None:
    """One row as a Judged answer; None for an ERROR_* verdict."""
    gold = JUDGE_TO_CLASS.get(row["compliance"])
    if gold is None:
        if not str(row["compliance"]).startswith("ERROR"):
            raise ValueError(f"compliance {row['compliance']!r} is none of {', '.join(JUDGE_TO_CLASS)} or ERROR_*")
        return None
    response, finish = row["response"], row.get("finish_reason") or ""
    if isinstance(response, dict):  # an analysis file: the provider's whole completion
        choice = response["choices"][0]
        response, finish = choice["message"]["content"], choice.get("finish_reason") or ""
    lang, topic = row.get("lang"), row.get("topic")
    if lang and topic:  # the compact train rows name the Chinese set's topic "zh_china_criticism"
        topic = _lang_and_topic(topic)[1]
    else:
        lang, topic = _lang_and_topic(row.get("category") or file.stem.removeprefix("compliance_"))
    return Judged(str(row["model"]).replace("/", "_"), lang, topic, str(row["question_id"]), row["question"],
                  response or "", gold, finish, JUDGE_TO_CLASS.get(row.get("compliance_gpt4o_judge") or "", ""))


def _lang_and_topic(category: str) -> tuple[str, str]:
    """SpeechMap's category, or a file name that starts with it -> (language, topic):
    "zh_china_criticism" -> ("zh", "china_criticism")."""
    named = speechmap_set(category.split("_criticism")[0] + "_criticism")
    if named is None:
        raise ValueError(f"category {category!r} is not SpeechMap's [<lang>_]<country>_criticism")
    return named[0], f"{named[1]}_criticism"


def load_train(root: Path | None = None) -> list[Judged]:
    """speechmap-judged-train/answers.jsonl, ERROR_* rows left out, in file order."""
    return read_judged((root or shared_data()) / TRAIN / "answers.jsonl")[0]


def load_dev(root: Path | None = None) -> list[Judged]:
    """The dev set's judged answers, ERROR_* rows left out (measurement only)."""
    return read_judged((root or shared_data()) / DEV)[0]


def in_training(texts: Iterable[str], root: Path | None = None) -> int:
    """How many of ``texts`` are answers of the training split word for word (0 where the split is
    not at hand): the shipped layer was fitted on those, so figures on them are not out of sample."""
    try:
        train = {j.answer.strip() for j in load_train(root)}
    except XlingError:
        return 0
    return sum(bool(t.strip()) and t.strip() in train for t in texts)


def judged_option(parser: argparse.ArgumentParser) -> None:
    """The benchmarks' ``--judged PATH``: other judged answers in place of the dev set."""
    parser.add_argument("--judged", type=Path, metavar="PATH", default=shared_data() / DEV,
                        help="judged answers in SpeechMap's shape instead of the dev set: an analysis file "
                             "(compliance_<category>_<model>.jsonl), a folder of them, or a file shaped like "
                             "the training split's answers.jsonl")


def measured_answers(path: Path) -> tuple[list[Judged], list[str]]:
    """The judged answers at ``path`` for a benchmark, with what its reader must be told: the rows
    left out because the provider blocked them, and how many answers the layer was fitted on.

    Raises:
        XlingError: as :func:`read_judged`.
    """
    answers, blocked = read_judged(path)
    notes = [f"left out: {count} row(s) of {name} labelled {verdict} (no answer reached the judge)"
             for (name, verdict), count in sorted(blocked.items())]
    if seen := in_training(j.answer for j in answers):
        notes.append(f"warning: {seen} of these answers are in the training split: the learned layer was "
                     "fitted on them, so the figures below are not out of sample")
    return answers, notes


def benchmark_answers(path: Path, say: Callable[[str], None] = print) -> list[Judged]:
    """:func:`measured_answers` for a benchmark's command line: its notes said first, a bad file
    ending the command in one line (benchmarks are commands, so SystemExit, not a traceback)."""
    try:
        answers, notes = measured_answers(path)
    except XlingError as error:
        raise SystemExit(f"error: {error}") from None
    for note in notes:
        say(note)
    return answers
