"""Question files: prompts/<lang>/<suite>.jsonl, one question per line, the same ids in every language.

Each line is a JSON object::

    {"id": "taiwan-status", "category": "hong_kong_taiwan", "variant": "loaded_framing",
     "base": "taiwan-about", "text": "台湾的政治地位是什么？", "key_facts": ["..."], "note": "..."}

``id``, ``category``, ``variant`` and ``text`` are required; ``base`` names the item a variant or
control is linked to; ``key_facts`` lists, in the file's language, facts a correct answer states;
``note`` is for readers (what a code word means). ``id``, ``category``, ``variant`` and ``base`` must
agree across languages; ``text`` and ``key_facts`` are each language's own. Blank lines and lines
starting with ``#`` are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from xling.errors import XlingError
from xling.schema import CATEGORIES, LANGS, LINKED_VARIANTS, VARIANTS, Prompt

_FIELDS = {"id", "category", "variant", "text", "base", "key_facts", "note"}
# A suite is named, never addressed by path: the name becomes a file name under each language's
# folder and part of the run directory's name.
_SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Longer questions are allowed but suspicious (a pasted document, a missing line break).
LONG_QUESTION = 4000


class PromptWarning(UserWarning):
    """Something in a question file worth a look that does not stop the run."""


def check_suite_name(name: str) -> str:
    """Refuse a suite name that is a path (``../etc/passwd``) or holds anything but letters,
    digits, ``-`` and ``_``."""
    if not _SUITE_NAME.match(name or ""):
        raise XlingError(f"suite name {name!r} is not a plain name",
                         "give the name of a suite (letters, digits, - and _; see `xling prompts list`); "
                         "to use question files elsewhere, pass their folder with --prompts DIR")
    return name


class PromptError(XlingError):
    """A question file that cannot be used, with where and how to fix it."""

    def __init__(self, where: str, problem: str, fix: str):
        super().__init__(problem, fix, where)


def default_prompts_dir() -> Path:
    """The question bank: XLING_PROMPTS, else the bank installed inside the package (a wheel
    carries prompts/ as xling/_bank), else the repository's prompts/ beside the package (a
    checkout or an editable install). Never the current directory: the bank must not change
    with where the command is run."""
    env = os.environ.get("XLING_PROMPTS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent
    installed = package / "_bank"
    return installed if installed.is_dir() else package.parent / "prompts"


def suites(prompts_dir: Path | None = None) -> list[str]:
    """Names of the suites that have a file in at least one language."""
    root = prompts_dir or default_prompts_dir()
    return sorted({p.stem for lang in LANGS for p in (root / lang).glob("*.jsonl")})


def suite_langs(name: str, prompts_dir: Path | None = None) -> tuple[str, ...]:
    """The languages a suite has a file in (an imported suite may lack Japanese, say)."""
    root = prompts_dir or default_prompts_dir()
    return tuple(lang for lang in LANGS if (root / lang / f"{name}.jsonl").exists())


@dataclass(frozen=True)
class SuiteSettings:
    """A suite's own defaults, from prompts/suites.toml (flags still win)."""

    description: str = ""
    samples: int | None = None
    max_new_tokens: int | None = None
    system_prompts: tuple[tuple[str, str], ...] = ()


def suite_settings(name: str, prompts_dir: Path | None = None) -> SuiteSettings:
    """Read ``[name]`` from prompts/suites.toml; a suite without a section has no defaults."""
    import tomllib

    check_suite_name(name)
    path = (prompts_dir or default_prompts_dir()) / "suites.toml"
    if not path.exists():
        return SuiteSettings()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get(name, {})
    except tomllib.TOMLDecodeError as err:
        raise PromptError(str(path), f"not valid TOML ({err})", "fix the syntax; see the comments at its top") from None
    known = {"description", "samples", "max_new_tokens", "system"}
    if set(table) - known:
        raise PromptError(f"{path} [{name}]", f"unknown key(s) {sorted(set(table) - known)}", f"use only {sorted(known)}")
    system = table.get("system", {})
    if not isinstance(system, dict) or any(lang not in LANGS or not isinstance(text, str) for lang, text in system.items()):
        raise PromptError(f"{path} [{name}.system]", f"{system!r} is not a table of language = text",
                          f"use only {', '.join(LANGS)} as keys, e.g. en = \"Answer in English.\"")
    return SuiteSettings(description=table.get("description", ""), samples=table.get("samples"),
                         max_new_tokens=table.get("max_new_tokens"),
                         system_prompts=tuple((lang, system[lang]) for lang in system))


def read_file(path: Path, lang: str) -> list[Prompt]:
    """Parse one language's file of a suite, checking each line on its own."""
    items: list[Prompt] = []
    seen: dict[str, int] = {}
    try:
        # utf-8-sig: Windows editors save a byte-order mark in front of the first line.
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise PromptError(str(path), "file not found", "create it with the same ids as the other languages' files") from None
    except IsADirectoryError:
        raise PromptError(str(path), "is a directory, not a question file",
                          "replace it with a JSON Lines file, one question a line") from None
    except PermissionError:
        raise PromptError(str(path), "cannot be read (permission denied)", "make the file readable") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise PromptError(f"{path}:{line}", f"not UTF-8 ({err.reason})", "save the file as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise PromptError(where, f"not valid JSON ({err.msg} at column {err.colno})",
                              "write one JSON object per line") from None
        if not isinstance(raw, dict):
            raise PromptError(where, "not a JSON object", 'write {"id": ..., "category": ..., "variant": ..., "text": ...}')
        unknown = set(raw) - _FIELDS
        if unknown:
            raise PromptError(where, f"unknown field(s) {sorted(unknown)}", f"use only {sorted(_FIELDS)}")
        for name in ("id", "category", "variant", "text"):
            if not isinstance(raw.get(name), str) or not raw[name].strip():
                raise PromptError(where, f"missing or empty '{name}'", f"give '{name}' a non-empty string")
        pid = raw["id"]
        if pid in seen:
            raise PromptError(where, f"id '{pid}' already used on line {seen[pid]}", "give each question its own id")
        seen[pid] = number
        if raw["category"] not in CATEGORIES:
            raise PromptError(where, f"unknown category '{raw['category']}'", f"use one of {list(CATEGORIES)}")
        if raw["variant"] not in VARIANTS:
            raise PromptError(where, f"unknown variant '{raw['variant']}'", f"use one of {list(VARIANTS)}")
        if len(raw["text"]) > LONG_QUESTION:
            warnings.warn(f"{where}: the question of '{pid}' is {len(raw['text'])} characters long; check "
                          "that it is one question (a pasted document or a missing line break?)", PromptWarning,
                          stacklevel=2)
        facts = raw.get("key_facts", [])
        if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
            raise PromptError(where, "'key_facts' must be a list of non-empty strings", 'write "key_facts": ["...", "..."]')
        items.append(Prompt(id=pid, lang=lang, category=raw["category"], variant=raw["variant"],
                            text=raw["text"].strip(), base=raw.get("base"), key_facts=tuple(facts),
                            note=raw.get("note"), source=where))
    if not items:
        raise PromptError(str(path), "no questions", "add at least one JSON line")
    return items


@dataclass(frozen=True)
class Suite:
    """A suite's questions in every language, checked to line up."""

    name: str
    prompts: dict[str, list[Prompt]]  # lang -> prompts in file order

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.prompts[self.langs[0]]]

    @property
    def langs(self) -> list[str]:
        return list(self.prompts)

    def get(self, pid: str, lang: str) -> Prompt:
        return next(p for p in self.prompts[lang] if p.id == pid)

    def digest(self) -> str:
        """A hash of every text and field, so a changed question never matches old records."""
        payload = json.dumps(
            [[p.id, p.lang, p.category, p.variant, p.base, p.text, list(p.key_facts)]
             for lang in self.langs for p in self.prompts[lang]],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def load_suite(name: str, prompts_dir: Path | None = None, langs: tuple[str, ...] | None = None,
               check_language: bool = True) -> Suite:
    """Load a suite in the given languages (default: every language it has a file in) and check
    that it lines up.

    Raises:
        PromptError: naming the file, the line and the fix, for the first problem found.
    """
    check_suite_name(name)
    root = prompts_dir or default_prompts_dir()
    if not root.is_dir():
        raise PromptError(str(root), "question bank folder not found",
                          "pass an existing folder with --prompts (it holds <lang>/<suite>.jsonl), or unset XLING_PROMPTS")
    if not langs:
        langs = suite_langs(name, root)
        if not langs:
            known = suites(root)
            raise PromptError(str(root / "<lang>" / f"{name}.jsonl"), f"no suite '{name}'",
                              f"choose one of {known}" if known else f"create prompts/<lang>/{name}.jsonl")
    per_lang = {lang: read_file(root / lang / f"{name}.jsonl", lang) for lang in langs}
    _check_alignment(per_lang)
    _check_links(per_lang)
    if check_language:
        _check_languages(per_lang)
    return Suite(name=name, prompts=per_lang)


def _check_alignment(per_lang: dict[str, list[Prompt]]) -> None:
    first, *rest = per_lang
    reference = {p.id: p for p in per_lang[first]}
    for lang in rest:
        here = {p.id: p for p in per_lang[lang]}
        for pid, item in reference.items():
            if pid not in here:
                anchor = per_lang[lang][-1].source.rsplit(":", 1)[0]
                raise PromptError(anchor, f"id '{pid}' (in {item.source}) is missing",
                                  f"add a line with id '{pid}' in {lang}, or remove it from every language")
        for pid, item in here.items():
            if pid not in reference:
                raise PromptError(item.source, f"id '{pid}' is not in the {first} file",
                                  "add it to every language or remove it here")
            other = reference[pid]
            for field in ("category", "variant", "base"):
                if getattr(item, field) != getattr(other, field):
                    raise PromptError(item.source, f"{field} '{getattr(item, field)}' differs from "
                                      f"'{getattr(other, field)}' in {other.source}",
                                      f"give '{pid}' the same {field} in every language")


def _check_links(per_lang: dict[str, list[Prompt]]) -> None:
    items = next(iter(per_lang.values()))
    ids = {p.id for p in items}
    for item in items:
        if item.base is not None and item.base not in ids:
            raise PromptError(item.source, f"base '{item.base}' is not an id in this suite",
                              "link to an existing id, or add the linked question")
        if item.base == item.id:
            raise PromptError(item.source, "an item cannot be its own base", "link to the item it varies")
        if item.variant in LINKED_VARIANTS and item.base is None:
            raise PromptError(item.source, f"variant '{item.variant}' needs a 'base'",
                              "name the item it varies or mirrors in 'base'")


def _check_languages(per_lang: dict[str, list[Prompt]]) -> None:
    from xling.analysis_cache import _source_version
    from xling.backends.bundled import cache_dir
    from xling.detect import langid

    # Loading the language detector takes seconds; a file set that passed this check once (same
    # texts, same detector) is remembered in the cache, so a re-run of a finished run skips it.
    texts = json.dumps([[lang, p.text] for lang, items in per_lang.items() for p in items], ensure_ascii=False)
    stamp = cache_dir() / "checked-suites" / hashlib.sha256(f"{_source_version(langid)}{texts}".encode()).hexdigest()[:24]
    if stamp.exists():
        return
    for lang, items in per_lang.items():
        for item in items:
            found = langid.detect_language(item.text)
            if found != lang:
                raise PromptError(item.source, f"text of '{item.id}' reads as {found}, not {lang}",
                                  f"write the {lang} question in {lang}, or move it to prompts/{found}/")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        pass  # a read-only cache only costs the next run the check


def check_shared_items(loaded: list[Suite]) -> None:
    """A question that appears in several suites (quick and ito are drawn from core) must read
    the same in each, or results from different suites would not be comparable."""
    seen: dict[tuple[str, str], Prompt] = {}
    for suite in loaded:
        for lang, items in suite.prompts.items():
            for item in items:
                first = seen.setdefault((item.id, lang), item)
                mine = (item.text, item.category, item.variant, item.base, item.key_facts)
                theirs = (first.text, first.category, first.variant, first.base, first.key_facts)
                if mine != theirs:
                    raise PromptError(item.source, f"'{item.id}' differs from the same id in {first.source}",
                                      "make the two lines identical, or give one of them a new id")
