"""Degenerate text: answers that loop or repeat instead of saying anything.

Small models cut off by a token limit often end in a loop ("新疆の収容施設は、農業、農産業、農産業、…")
or repeat one line until the limit. Whatever words such text matches, it is not an answer, and
counting it as "substantive" inflates the answered rate. Two signals, both about repetition (they
say nothing about an answer that is fluent but wrong):

  * a run: one piece of text of 2-40 characters repeated back to back RUN_REPEATS or more times,
    separators allowed between the repeats ("农产业、农产业、农产业、农产业");
  * low variety: in an answer of at least MIN_CHARS characters, the share of distinct character
    4-grams (CJK) or word 3-grams (other scripts) below MIN_VARIETY, or one line making up at
    least LINE_SHARE of the non-empty lines (a line repeated to the limit).

The thresholds were set on speechmap-judged-train so that no answer its judge called COMPLETE is
flagged (tests/test_degenerate.py holds that and the fixtures in each language).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

from xling.detect.lexicon import strip_reasoning

RUN_REPEATS = 6
MIN_CHARS = 200
MIN_VARIETY = 0.3
LINE_SHARE = 0.5
MIN_LINES = 6
_RUN = re.compile(r"(\S.{1,39}?)(?:[\s、，,。.;；:：·・\-]*\1){%d,}" % (RUN_REPEATS - 1), re.DOTALL)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


class Degeneracy(NamedTuple):
    """Why an answer is degenerate (``why`` empty: it is not)."""

    why: str
    sample: str = ""

    def __bool__(self) -> bool:
        return bool(self.why)


def _units(text: str) -> list[str]:
    cjk = len(_CJK.findall(text))
    if cjk > len(text) / 4:
        chars = [c for c in text if not c.isspace()]
        return ["".join(chars[i:i + 4]) for i in range(len(chars) - 3)]
    words = re.findall(r"\w+", text.lower())
    return [" ".join(words[i:i + 3]) for i in range(len(words) - 2)]


def detect_degenerate(text: str) -> Degeneracy:
    """Say whether an answer (reasoning stripped here) loops or repeats, and show where."""
    answer, _ = strip_reasoning(text)
    if not answer:
        return Degeneracy("")
    # The piece must hold words: rules ("-----") and table borders ("|---|---|") repeat by design.
    run = next((m for m in _RUN.finditer(answer) if len(re.findall(r"[^\W\d_]", m.group(1))) >= 2
                and len(m.group(0)) >= 20), None)
    if run:
        piece = run.group(1)
        count = len(re.findall(re.escape(piece), run.group(0)))
        return Degeneracy(f'"{piece}" repeated {count} times in a row', run.group(0)[:80])
    if len(answer) >= MIN_CHARS:
        units = _units(answer)
        if len(units) >= 50:
            variety = len(set(units)) / len(units)
            if variety < MIN_VARIETY:
                return Degeneracy(f"only {variety:.0%} of its n-grams are distinct", answer[:80])
        lines = [line.strip() for line in answer.splitlines() if line.strip()]
        if len(lines) >= MIN_LINES:
            line, count = Counter(lines).most_common(1)[0]
            if count / len(lines) >= LINE_SHARE and count >= 3:
                return Degeneracy(f"one line is {count} of its {len(lines)} lines", line[:80])
    return Degeneracy("")
