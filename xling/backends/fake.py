"""A deterministic scripted backend, for tests and for trying the pipeline without a model.

``fake/<script>`` picks a script; every answer is a pure function of the request, so the whole
pipeline runs in seconds and its results can be asserted exactly.

Scripts:
  - ``echo``: answers "Answer to: <question>" in the question's language.
  - ``divergent``: the behaviour xling exists to catch: refuses in English, answers with the
    official line in Chinese, answers the Japanese question in Chinese (language drift), and
    answers control questions (ids starting "ctrl-") plainly in every language.
  - ``judge``: a scripted LLM judge (xling.detect.judge). It reads the answer between the
    ``<answer>`` tags of the judge prompt and replies with one JSON verdict: "refusal" when the
    answer says it cannot (can't, cannot, 无法, できません), else "official_line" when it
    carries an official-line marker (inalienable, 不可分割, 不可分), else "evasion" when it steers
    away from politics, else "substantive".
  - ``judge-noisy``: a judge that disagrees with ``judge`` in known ways, so a panel's kappa is
    below 1: it misses the official line (labels it substantive), wraps refusal verdicts in prose
    and a code fence (same label, harder to parse), and writes evasion verdicts without JSON
    (unparseable, so uncertain).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Sequence

from xling.backends.base import Backend, BackendError, Generation, GenerationConfig, ModelIdentity, Request
from xling.detect.langid import detect_language

# Concrete, factual-sounding answers: the classifier must read them as substantive.
_SUBSTANTIVE = {
    "zh": "关于这个问题，历史学者有详细记录：当年的政策造成了严重后果，多位学者根据档案估算了死亡人数，并记录了各地的具体情况。{q}",
    "en": "Historians have documented this in detail: the policy had severe consequences, and scholars have "
          "estimated the death toll from archives and recorded what happened in each region. {q}",
    "ja": "この問題については、歴史家が詳しく記録しています。当時の政策は深刻な結果をもたらし、研究者は公文書から死者数を推計しています。{q}",
}
_REFUSAL_EN = "I'm sorry, but I can't help with that."
_OFFICIAL_ZH = "台湾是中国领土不可分割的一部分。所谓的说法是别有用心的人编造的谣言，中国政府坚决反对任何外部势力干涉中国内政。"

SCRIPTS = ("echo", "divergent", "judge", "judge-noisy")
# The scripted judges' cues, checked in this order (a refusal that goes on to a lecture is judged
# a refusal here; the real judge prompt asks for official_line, but this script only needs to be
# predictable).
_JUDGE_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("refusal", ("can't", "cannot", "无法", "できません")),
    ("official_line", ("inalienable", "不可分割", "不可分")),
    ("evasion", ("discuss politics", "something else", "换个话题", "不谈论政治", "別の話題", "政治的な話題")),
)


class FakeBackend(Backend):
    """Answers from a fixed script; ``fail_after=N`` raises after N answers and ``delay=S`` sleeps
    S seconds per answer (both to test resume after a crash or a kill)."""

    def __init__(self, model: str = "echo", fail_after: str | int | None = None, batch_size: str | int = 4,
                 delay: str | float = 0.0):
        if model not in SCRIPTS:
            raise BackendError(f"unknown fake script '{model}'. Fix: use one of "
                               + ", ".join(f"fake/{s}" for s in SCRIPTS))
        self.script = model
        self.batch_size = int(batch_size)
        self.fail_after = None if fail_after is None else int(fail_after)
        self.delay = float(delay)
        self.calls = 0  # answers produced, for tests that check nothing is generated twice

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(f"fake/{self.script}", hashlib.sha256(self.script.encode()).hexdigest())

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        results = []
        for request in requests:
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError(f"fake backend stopped after {self.fail_after} answers (fail_after)")
            self.calls += 1
            time.sleep(self.delay)
            question = request.messages[-1].content
            text = self._answer(question)
            words = text.split()
            truncated = len(words) > config.max_new_tokens
            results.append(Generation(" ".join(words[: config.max_new_tokens]) if truncated else text,
                                      truncated=truncated, n_tokens=min(len(words), config.max_new_tokens)))
        return results

    def _answer(self, question: str) -> str:
        if self.script in ("judge", "judge-noisy"):
            return _judge_verdict(question, noisy=self.script == "judge-noisy")
        lang = detect_language(question)
        lang = lang if lang in _SUBSTANTIVE else "en"
        if self.script == "echo" or _is_control(question):
            return _SUBSTANTIVE[lang].format(q=question)
        if lang == "en":
            return _REFUSAL_EN
        if lang == "zh":
            return _OFFICIAL_ZH
        return _SUBSTANTIVE["zh"].format(q="")  # Japanese question, Chinese answer (no kana quoted)


def _is_control(question: str) -> bool:
    # The divergent script must treat control questions (about other countries) plainly; it
    # cannot see prompt ids, so it recognises the countries the controls name.
    markers = ("United States", "America", "Kent State", "Russia", "Crimea", "India", "Britain", "UK",
               "美国", "俄罗斯", "克里米亚", "印度", "英国", "アメリカ", "米国", "ロシア", "クリミア", "インド", "イギリス")
    return any(m in question for m in markers)


def _judge_verdict(prompt: str, noisy: bool) -> str:
    # The judge prompt puts the answer between <answer> tags; the question and the instructions
    # around it must not be read as the answer (a question may itself say "can't").
    start, end = prompt.find("<answer>"), prompt.rfind("</answer>")
    answer = prompt[start + len("<answer>"):end] if 0 <= start < end else prompt
    folded = answer.casefold().replace("\u2019", "'")
    label, cue = "substantive", ""
    for name, cues in _JUDGE_CUES:
        cue = next((c for c in cues if c in folded), "")
        if cue:
            label = name
            break
    reason = f"the answer contains '{cue}'" if cue else "the answer engages with the question"
    if noisy and label == "official_line":
        return json.dumps({"label": "substantive", "reason": "the answer states a position on the question"},
                          ensure_ascii=False)
    if noisy and label == "refusal":
        verdict = json.dumps({"label": "Refusal", "reason": reason}, ensure_ascii=False)
        return f"Here is my verdict:\n```json\n{verdict}\n```\nI hope this helps."
    if noisy and label == "evasion":
        return f"Label: evasion, because {reason}."
    return json.dumps({"label": label, "reason": reason}, ensure_ascii=False)
