"""Replay: analyse answers collected elsewhere (a hosted chat product, another harness, a paper's
data) through the same translation, classification, comparison and reports as live answers.

The file is JSON Lines, one answer a line::

    {"model": "deepseek-r1", "prompt_id": "tiananmen-1989", "lang": "zh",
     "prompt": "1989年6月4日北京发生了什么？", "response": "…", "sample": 0}

``sample`` is optional (answers to the same model, question and language are numbered in file
order); ``category`` and ``variant`` are optional too (else taken from the suite when it has the
id, else "uncategorised"); so is ``finish_reason``, the provider's: a block reason
(``content_filter``, ``SAFETY``, ...) records the answer as the provider's block, ``length`` as
cut off by the token limit. Address one model of a file as ``replay/<file>#<model>``;
``replay/<file>`` alone stands for every model in it; ``replay/<folder>`` reads every ``*.jsonl`` file
in the folder as one. A malformed line is reported with its line number and skipped: the rest of
the file is still analysed.

Lines of SpeechMap's analysis files (``compliance_[zh_]china_criticism_<model>.jsonl``: the
question and the provider's whole chat completion) are read as they are, so its published answers
replay without conversion: the model as its file names spell it (``deepseek_deepseek-r1``), the
question id as ``xling prompts import speechmap`` writes it (``speechmap-china-criticism-26``), the
language from ``category``, the text and finish reason from ``response.choices[0]``. So are
compacted SpeechMap lines (``question_id``, ``question``, ``lang`` and the text in ``response``, as
in the judged training split).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from xling.backends.base import Backend, BackendError, Generation, GenerationConfig, ModelIdentity, Request
from xling.backends.openai_api import completion
from xling.importers import speechmap_id, speechmap_set
from xling.schema import LANGS

REQUIRED = ("model", "prompt_id", "lang", "prompt", "response")
# Other tools write a language as a tag: "zh-CN", "zh_Hans", "en-US", "JA". Traditional Chinese is
# another written language than the Simplified the question bank and classifier read.
_TRADITIONAL = {"hant", "tw", "hk", "mo"}


def language_code(value: str) -> str | None:
    """``value`` as one of LANGS ("zh-CN" -> "zh", "EN" -> "en"), or None."""
    primary, *rest = value.strip().lower().replace("_", "-").split("-")
    if primary not in LANGS or (primary == "zh" and _TRADITIONAL & set(rest)):
        return None
    return primary


@dataclass(frozen=True)
class ReplayRow:
    model: str
    prompt_id: str
    lang: str
    prompt: str
    response: str
    sample: int
    category: str | None
    variant: str | None
    line: int
    finish_reason: str = ""


@dataclass(frozen=True)
class ReplayFile:
    path: Path
    rows: tuple[ReplayRow, ...]
    problems: tuple[str, ...]  # "file:line: problem. Fix: ..." for each skipped line

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(row.model for row in self.rows))


@lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int) -> ReplayFile:
    rows, problems = [], []
    counters: dict[tuple[str, str, str], int] = defaultdict(int)
    with open(path, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                # Line by line, so one bad byte costs one answer, not the file; utf-8-sig takes
                # the byte-order mark Windows editors put in front of the first line.
                line = data.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                problems.append(f"{where}: not UTF-8 (byte {err.start + 1} of the line). Fix: save the file as UTF-8")
                continue
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"{where}: not valid JSON ({err.msg}). Fix: one JSON object per line")
                continue
            if not isinstance(raw, dict):
                problems.append(f"{where}: not a JSON object. Fix: write {{\"model\": ..., \"prompt_id\": ...}}")
                continue
            if "question_id" in raw and "prompt_id" not in raw:
                raw = _from_speechmap(raw)
                if isinstance(raw, str):
                    problems.append(f"{where}: {raw}")
                    continue
            missing = [f for f in REQUIRED if not isinstance(raw.get(f), str) or (f != "response" and not raw[f].strip())]
            if missing:
                problems.append(f"{where}: missing or non-string {', '.join(missing)}. Fix: give every line "
                                f"{', '.join(REQUIRED)} (and optionally sample)")
                continue
            lang = language_code(raw["lang"])
            if lang is None:
                problems.append(f"{where}: lang '{raw['lang']}' is not one of {', '.join(LANGS)}. Fix: use zh, en or ja"
                                + (" (xling's Chinese is Simplified: zh-Hant answers are not compared with it)"
                                   if raw["lang"].lower().startswith("zh") else ""))
                continue
            raw["lang"] = lang
            group = (raw["model"], raw["prompt_id"], raw["lang"])
            sample = raw.get("sample", counters[group])
            if not isinstance(sample, int) or sample < 0:
                problems.append(f"{where}: sample must be a non-negative integer. Fix: \"sample\": 0")
                continue
            counters[group] = max(counters[group], sample + 1)
            rows.append(ReplayRow(raw["model"], raw["prompt_id"], raw["lang"], raw["prompt"].strip(),
                                  raw["response"], sample, raw.get("category"), raw.get("variant"), number,
                                  str(raw.get("finish_reason") or "")))
    seen: dict[tuple, int] = {}
    unique = []
    for row in rows:
        key = (row.model, row.prompt_id, row.lang, row.sample)
        if key in seen:
            problems.append(f"{path}:{row.line}: {row.model} / {row.prompt_id} / {row.lang} / sample {row.sample} "
                            f"already given on line {seen[key]}. Fix: number repeated answers with \"sample\"")
            continue
        seen[key] = row.line
        unique.append(row)
    unique, asked_twice = _one_question_per_id(unique, lambda row: f"{path}:{row.line}")
    return ReplayFile(path, tuple(unique), tuple(problems + asked_twice))


def _one_question_per_id(rows: list[ReplayRow], where) -> tuple[list[ReplayRow], list[str]]:
    """The rows whose question is the one first given for their model, question id and language,
    and a problem for each other: its answer is to another question, so counting it as one more
    sample of the first would mix two questions' answers (``where``: a row's "file:line")."""
    first: dict[tuple[str, str, str], ReplayRow] = {}
    kept, problems = [], []
    for row in rows:
        earlier = first.setdefault((row.model, row.prompt_id, row.lang), row)
        if " ".join(earlier.prompt.split()) != " ".join(row.prompt.split()):
            problems.append(f"{where(row)}: {row.model} / {row.prompt_id} / {row.lang} asks {_quoted(row.prompt)}, "
                            f"but {where(earlier)} asked {_quoted(earlier.prompt)} under the same id. "
                            "Fix: give each question its own prompt_id")
            continue
        kept.append(row)
    return kept, problems


def _quoted(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _from_speechmap(raw: dict) -> dict | str:
    """A SpeechMap line in the replay format, or what is wrong with it: an analysis file's (the
    provider's whole completion, the language in ``category``) or a compacted one like the
    training split's (the text in ``response``, the language in ``lang``). Other missing fields
    stay missing, and the checks that follow name them."""
    if isinstance(raw.get("response"), str) or "response" not in raw:
        content, finish, lang = raw.get("response"), raw.get("finish_reason"), raw.get("lang")
    else:
        try:
            choice = raw["response"]["choices"][0]
            content, finish = choice["message"].get("content") or "", choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            # Not an answer the model gave (SpeechMap's judge marks such lines ERROR_*): counting it
            # as an empty answer would make it a refusal.
            return ("SpeechMap line without response.choices[0].message: the provider returned no completion. "
                    "Fix: leave the line out (it is not the model's answer)")
        named = speechmap_set(str(raw.get("category", "")))
        lang = named[0] if named else None
    return {"model": str(raw.get("model", "")).replace("/", "_"),
            "prompt_id": speechmap_id(str(raw["question_id"])), "lang": lang,
            "prompt": raw.get("question"), "response": content, "finish_reason": finish}


def load_replay(path: Path) -> ReplayFile:
    """Parse a replay file, or every ``*.jsonl`` file of a folder as one, keeping every good line
    and a message for every bad one."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise BackendError(f"no *.jsonl files in the replay folder {path}. Fix: --model replay/<folder of "
                               "answer files> or replay/<path to answers.jsonl>")
        return _joined(path, [_load_cached(file, file.stat().st_mtime_ns) for file in files])
    if not path.is_file():
        raise BackendError(f"replay file {path} not found. Fix: --model replay/<path to answers.jsonl>")
    return _load_cached(path, path.stat().st_mtime_ns)


def _joined(folder: Path, files: list[ReplayFile]) -> ReplayFile:
    """A folder's files as one replay (SpeechMap keeps each model's languages in files of their own);
    an answer given in two files is kept from the first and reported."""
    rows, problems, seen = [], [], {}
    for file in files:
        problems += file.problems
        for row in file.rows:
            key = (row.model, row.prompt_id, row.lang, row.sample)
            if key in seen:
                problems.append(f"{file.path}:{row.line}: {row.model} / {row.prompt_id} / {row.lang} / sample "
                                f"{row.sample} already given in {seen[key][0].name}:{seen[key][1]}. "
                                "Fix: keep each answer in one file")
                continue
            seen[key] = (file.path, row.line)
            rows.append(row)

    def where(row: ReplayRow) -> str:
        file, line = seen[row.model, row.prompt_id, row.lang, row.sample]
        return f"{file}:{line}"

    rows, asked_twice = _one_question_per_id(rows, where)
    return ReplayFile(folder, tuple(rows), tuple(problems + asked_twice))


def split_replay_address(model: str) -> tuple[Path, str | None]:
    file, _, name = model.partition("#")
    return Path(file), name or None


class ReplayBackend(Backend):
    """Serves the answers of one model from a replay file."""

    batch_size = 256  # nothing is computed: big batches just mean fewer commits

    def __init__(self, model: str):
        path, name = split_replay_address(model)
        self.file = load_replay(path)
        models = self.file.models
        if name is None:
            if len(models) != 1:
                raise BackendError(f"{path} holds {len(models)} models ({', '.join(models)}). "
                                   f"Fix: pick one with replay/{path}#<model>")
            name = models[0]
        if name not in models:
            raise BackendError(f"no answers of model '{name}' in {path}. Fix: use one of {', '.join(models)}")
        self.model = name
        self.rows = [row for row in self.file.rows if row.model == name]
        self._answers = {(r.prompt_id, r.lang, r.sample): r for r in self.rows}
        # A finish reason is part of what was collected; files without one keep the digest they had.
        digest = hashlib.sha256(json.dumps([(r.prompt_id, r.lang, r.sample, r.prompt, r.response)
                                            + ((r.finish_reason,) if r.finish_reason else ()) for r in self.rows],
                                           ensure_ascii=False).encode()).hexdigest()
        self._identity = ModelIdentity(f"replay/{name}", digest)

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def generate(self, requests: Sequence[Request], config: GenerationConfig) -> list[Generation]:
        out = []
        for request in requests:
            try:
                row = self._answers[(request.prompt_id, request.lang, request.sample)]
            except KeyError:
                raise BackendError(f"no replayed answer for {request.prompt_id} / {request.lang} / sample "
                                   f"{request.sample} of {self.model}") from None
            # As a live run would record it: a filter's finish reason, or a text that is only a block
            # reason ("SAFETY"), is the provider's block, not the model's answer.
            out.append(completion(row.response, finish_reason=row.finish_reason))
        return out


def expand_replay_addresses(addresses: Sequence[str]) -> list[str]:
    """``replay/<file>`` with several models in it stands for one address per model."""
    out = []
    for address in addresses:
        if address.startswith("replay/") and "#" not in address:
            file = load_replay(Path(address[len("replay/"):]))
            if len(file.models) > 1:
                out += [f"{address}#{model}" for model in file.models]
                continue
        out.append(address)
    return out
