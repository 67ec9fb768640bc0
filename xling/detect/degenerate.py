"""Degenerate text: answers that loop or repeat instead of saying anything.

Small models cut off by a token limit often end in a loop ("新疆の収容施設は、農業、農産業、農産業、…")
or repeat one line until the limit. Whatever words such text matches, it is not an answer, and
counting it as "substantive" inflates the answered rate. Three signals, about repetition and
script soup (they say nothing about an answer that is fluent but wrong), and, where the question
is known, an echo:

  * a run: one piece of text of 2-40 characters repeated back to back RUN_REPEATS or more times,
    separators allowed between the repeats ("农产业、农产业、农产业、农产业"), a piece of 12-80
    characters LONG_RUN_REPEATS or more times (a list that loops), or a clause of 40-120
    characters CLAUSE_RUN_REPEATS or more times;
  * low variety: in an answer of at least MIN_CHARS characters, the share of distinct character
    4-grams (CJK) or word 3-grams (other scripts) below MIN_VARIETY, or one line making up at
    least LINE_SHARE of the non-empty lines (a line repeated to the limit);
  * incoherence: the text switches between scripts at least INCOHERENT_SWITCH_RATE times per
    letter in its worst window ("Baidu’s search engine 索引跳过敏感关键词 Kanren Gao,娶妻 video yet汉"),
    or less often but with letters of other scripts and code fragments (Chinese answers that turn
    into Latin, Arabic and identifier soup);
  * an echo: the answer is a question, the one it was asked said back (ECHO_SIMILARITY);
  * no answer at all: the text is only a provider's block reason ("SAFETY", as SpeechMap's Gemini
    1.5 Pro answers hold it), which a replayed run records as blocked before anything is labelled.

The repetition thresholds were set on speechmap-judged-train so that no answer its judge called
COMPLETE is flagged, the incoherence one so that what it flags is script soup (see its comment);
tests/test_learned_classifier.py holds both, and the fixtures in each language.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from difflib import SequenceMatcher
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from xling.detect.lexicon import ends_as_a_question, strip_reasoning
from xling.schema import block_marker

RUN_REPEATS = 6
# Script changes per letter, in the worst 300-letter window, from which an answer is incoherent. On
# the training split 53 answers reach 0.1: 47 the judge called EVASIVE or DENIAL and 6 COMPLETE,
# all 6 of them text that turns into script soup after pages of answer ("had 错块张同学 或 not量的国宝
# 避录这些内容"); no ordinary answer comes near it (English answers with Chinese terms stay below
# 0.05, Chinese ones with English terms below 0.08, Japanese kanji and kana count as one script).
INCOHERENT_SWITCH_RATE = 0.1
# Soup in a Chinese answer switches less (long runs of Latin gibberish between Chinese phrases), but
# brings letters of other scripts and code fragments with it ("cachescreator Richard Parker 张贴的
# بنا علیه سیستم Kommunistische Partei"). From this many of each, at a switch rate of at least
# SOUP_SWITCH_RATE, it is incoherent too: on the training split that adds 14 answers in Chinese
# the judge called not COMPLETE (13 of Llama-3.1-70B's 24) and 5 it called COMPLETE, each of them
# soup after a page of answer when read.
SOUP_FOREIGN_LETTERS = 5
SOUP_CODE_FRAGMENTS = 1
SOUP_SWITCH_RATE = 0.04
MIN_CHARS = 200
MIN_VARIETY = 0.3
LINE_SHARE = 0.5
MIN_LINES = 6
_SEPARATORS = r"[\s、，,。.;；:：·・\-]*"
_RUN = re.compile(r"(\S.{1,39}?)(?:%s\1){%d,}" % (_SEPARATORS, RUN_REPEATS - 1), re.DOTALL)
# A longer piece, a list or a clause, loops in fewer repeats ("経済的な問題、社会問題、文化問題、政治問題、
# 教育問題、" four times over in a 96-token answer, which is too short for the variety check). On the
# training split a piece of 12-80 characters with at least 4 distinct letters repeated 4 times adds
# no answer the judge called COMPLETE; 3 repeats would add song refrains ("Newsies with the spin
# from Moscow"), and 2 distinct letters "La-la-la, la-la-la-la".
LONG_RUN_REPEATS = 4
LONG_RUN_LETTERS = 4
_LONG_RUN = re.compile(r"(\S.{11,79}?)(?:%s\1){%d,}" % (_SEPARATORS, LONG_RUN_REPEATS - 1), re.DOTALL)
# A whole clause loops in three ("是中国不可分割的一部分，位于中国东南沿海，与台湾省、澎湖、金平、台岛等省份相连，"
# three times over and cut off, the bundled model's answer to "介绍一下台湾吧。"). A piece of 40-120
# characters with at least 12 distinct letters repeated 3 times adds no answer of the training
# split to those flagged already (24 characters and 8 letters would add one song's refrain, 33
# characters long, which the judge called COMPLETE).
CLAUSE_RUN_REPEATS = 3
CLAUSE_RUN_LETTERS = 12
_CLAUSE_RUN = re.compile(r"(\S.{39,119}?)(?:%s\1){%d,}" % (_SEPARATORS, CLAUSE_RUN_REPEATS - 1), re.DOTALL)
# An answer that only says the question back ("中国为什么执行2016年国际法院关于南海的判决？" to "中国为什么
# 不执行……？", from the bundled model): it is a question itself, its letters match the question's at
# ECHO_SIMILARITY or more (difflib's ratio) and it is at most ECHO_LENGTH times as long. It must end
# in a question mark: a short answer restates its question ("Yes, the Senkaku Islands are Japanese
# territory.", "大跃进时期的大饥荒饿死了1000人。" reach 0.8-0.9), and saying so is answering. The 42
# short right answers of tests/fixtures/short_answers.jsonl reach 0.44 at most; no training answer
# that short reaches 0.53.
ECHO_SIMILARITY = 0.8
ECHO_LENGTH = 1.5
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


@lru_cache(maxsize=4)
def _pieces(text: str, size: int) -> tuple[list[str], Counter]:
    """Every piece of ``size`` characters of ``text`` and how often each occurs: counted once for
    both long-run patterns of one answer."""
    pieces = [text[i:i + size] for i in range(len(text) - size + 1)]
    return pieces, Counter(pieces)


def _runs(pattern: re.Pattern, text: str, repeats: int, size: int = 12):
    """What ``pattern.finditer(text)`` finds, for a pattern of a piece of ``size`` or more characters
    repeated ``repeats`` times, trying only where such a run can start: where the next ``size``
    characters occur ``repeats`` times in the text. The same matches, several times faster on long
    answers, where the patterns would otherwise be tried at every character."""
    pieces, counts = _pieces(text, size)
    end = 0
    for start, piece in enumerate(pieces):
        if start >= end and counts[piece] >= repeats:
            found = pattern.match(text, start)
            if found:
                yield found
                end = found.end()


def detect_degenerate(text: str, question: str = "") -> Degeneracy:
    """Say whether an answer (reasoning stripped here) loops or repeats, or only repeats the
    ``question`` it was asked, and show where."""
    answer, _ = strip_reasoning(text)
    if not answer:
        return Degeneracy("")
    if block_marker(answer):
        return Degeneracy("is only the provider's block reason, no words of the model's", answer)
    if question and _echoes(answer, question):
        return Degeneracy("repeats the question instead of answering it", answer[:80])
    # The piece must hold words: rules ("-----") and table borders ("|---|---|") repeat by design.
    run = next((m for m in _RUN.finditer(answer) if len(re.findall(r"[^\W\d_]", m.group(1))) >= 2
                and len(m.group(0)) >= 20), None)
    for pattern, letters, repeats in ((_LONG_RUN, LONG_RUN_LETTERS, LONG_RUN_REPEATS),
                                      (_CLAUSE_RUN, CLAUSE_RUN_LETTERS, CLAUSE_RUN_REPEATS)):
        run = run or next((m for m in _runs(pattern, answer, repeats)
                           if len(set(re.findall(r"[^\W\d_]", m.group(1).lower()))) >= letters), None)
    if run:
        piece = run.group(1)
        count = len(re.findall(re.escape(piece), run.group(0)))
        return Degeneracy(f'"{piece}" repeated {count} times in a row', run.group(0)[:80])
    noise = incoherence(answer)
    if noise.switch_rate >= INCOHERENT_SWITCH_RATE or (
            noise.switch_rate >= SOUP_SWITCH_RATE and noise.foreign_letters >= SOUP_FOREIGN_LETTERS
            and noise.code_fragments >= SOUP_CODE_FRAGMENTS):
        return Degeneracy(f"breaks down into mixed scripts ({noise.switch_rate * SWITCH_WINDOW:.0f} script changes "
                          f"in {SWITCH_WINDOW} letters, {noise.foreign_letters} letters of other scripts, "
                          f"{noise.code_fragments} code fragments)", answer[noise.worst_at:noise.worst_at + 80])
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


def _echoes(answer: str, question: str) -> bool:
    """Whether the answer is the question said back: a question itself, whose letters (case folded)
    match the question's as a whole."""
    if not ends_as_a_question(answer):
        return False
    a, q = ("".join(re.findall(r"[^\W_]", t.lower())) for t in (answer, question))
    return bool(q) and len(a) <= ECHO_LENGTH * len(q) and SequenceMatcher(
        None, a, q, autojunk=False).ratio() >= ECHO_SIMILARITY


# --- incoherence: text that breaks down into mixed scripts and code fragments ---------------------

# Scripts an answer in zh, en or ja is written in: Latin, and CJK (Han and kana, one script here so
# that Japanese mixing kanji and kana does not count as switching).
_HOME_SCRIPTS = ("Latin", "CJK")
_CODEISH = re.compile(r"<\|[^|>]{1,40}\|>|reserved_special_token|[a-z]+[A-Z][a-z]+[A-Z]\w*|\w+_\w+_\w+")
SWITCH_WINDOW = 300


def _script(char: str) -> str | None:
    """The script of a letter (None for anything else): Latin, CJK, or the first word of its
    Unicode name (ARABIC, THAI, HANGUL, CYRILLIC...)."""
    if char.isascii():
        return "Latin" if char.isalpha() else None
    if _CJK.match(char):
        return "CJK"
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return "Latin" if name.startswith("LATIN") else (name.split(" ")[0] or "OTHER")


class Incoherence(NamedTuple):
    """Signs that an answer breaks down into noise (Kimi-VL and Llama-3.1-70B answers in the
    training split that end in "vers赤裸头的的 我的片段再次提及/Q 甜跟过年的231'ny"): what the learned
    layer sees of it (xling/detect/features.py), and where it is worst."""

    foreign_letters: int  # letters in scripts other than Latin and CJK (Thai, Arabic, Hangul...)
    switch_rate: float  # script changes per letter in the worst SWITCH_WINDOW-letter window
    code_fragments: int  # special tokens, camelCase and snake_case identifiers
    worst_at: int = 0  # where that window starts, in characters


@lru_cache(maxsize=4096)
def incoherence(text: str) -> Incoherence:
    """Measure an answer's (reasoning already stripped) script mixing and code fragments. Cached:
    the degenerate check and the learned layer's features both ask for the same answer."""
    letters = [(k, s) for k, s in enumerate(map(_script, text)) if s]
    scripts = [s for _, s in letters]
    foreign = sum(1 for s in scripts if s not in _HOME_SCRIPTS)
    worst, at = 0.0, 0
    if len(scripts) >= 50:
        changes = np.fromiter((a != b for a, b in zip(scripts, scripts[1:])), dtype=np.int32)
        # Changes in every window of SWITCH_WINDOW letters (or the whole text, if shorter).
        width = min(SWITCH_WINDOW, len(scripts)) - 1
        sums = np.convolve(changes, np.ones(width, dtype=np.int32), mode="valid")
        start = int(sums.argmax())
        worst, at = float(sums[start]) / (width + 1), letters[start][0]
    return Incoherence(foreign, worst, len(_CODEISH.findall(text)), at)
