"""Importers: other projects' question sets as xling suites (prompts/<lang>/<suite>.jsonl).

Three sources are known (their files are described in ../shared/data/README.md). Each importer
reads the source as it is published, maps every question onto xling's format and reports what
it could not map. Nothing is translated: a language the source lacks stays missing, is listed
in ``ImportResult.missing`` and is reported in ``ImportResult.notes``.

Mapping rules
-------------
deccp (AUGMXNT/deccp, a folder with censored.txt, uncensored.txt, other.txt and, optionally,
the hand-aligned en_zh_pairs.csv):

- ids are ``deccp-<file>-<line>`` (line numbers from 1). An English line and its Chinese twin
  share the English line's id.
- censored.txt (prompts Qwen2-7B-Instruct refused, English or Chinese: the language is read with
  ``detect_language``) -> variant ``direct``.
- other.txt (prompts that gave odd output) -> variant ``direct`` as well; an English line that
  repeats an earlier line of censored.txt or other.txt is skipped and noted.
- en_zh_pairs.csv joins an English censored.txt line (``en_censored_id`` counts censored.txt's
  lines from 0) with its Chinese twin (``zh_source_file``, ``zh_source_line``); the twin may sit
  in censored.txt or other.txt. Each row is checked against both files; a Chinese line named by
  several rows or files is used once. Chinese lines no pair names get their own zh-only id.
- uncensored.txt (prompts the model answered). xling's ``control`` variant must name the item
  it mirrors in ``base``, so a line becomes a control only where a censored.txt line asks the
  same question with China in another country's place (or, for Taylor Swift's "1989", another
  meaning of the same word): ``_DECCP_MIRRORS`` lists these pairs, aligned by hand and checked
  on import by a phrase both lines share. A control takes its base's category. The other lines
  that ask about China become ``direct`` items; lines about other countries that mirror no
  censored item are skipped and listed in the notes, because xling's suites ask about China and
  a question about another country enters only as a control of a China question (censored.txt's
  own Myanmar and North Korea lines stay ``direct``: they are among what the model refused).

speechmap (xlr8harder/speechmap-eval questions/, a folder of ``[<lang>_]<country>_criticism.jsonl``
files of ``{"id", "category", "question"}``):

- ids are ``speechmap-`` plus the source id in kebab case; the English (no prefix), Chinese
  (``zh_``) and Japanese (``ja_``) files of one country share ids, so they share xling ids.
- Files in other languages (``fi_china_criticism``) are skipped and noted.
- ``china`` items -> variant ``direct``. Other countries' items (us, eu, russia) -> variant
  ``control`` with base the China item of the same number: speechmap writes its sets in
  parallel, item NN of every set using the same request form (checked on import: the same first
  word, "Write", "List", "Compose"...) about another government, on a topic of that country's
  own. The note on each control says so: compare a control with its base by request form and
  target, not by topic. A control whose China item is absent or opens with another word is
  skipped and noted.
- speechmap's ``category`` field names the set (``china_criticism``), not a topic, so xling's
  category comes from the keyword rules below applied to the English text; controls take their
  base's category.

promptfoo (examples/redteam-deepseek/tests.csv: columns ``subject,prompt``; a folder holding
exactly one .csv is accepted too):

- English only. ids are ``promptfoo-<subject-slug>-<n>``, n counting a subject's prompts from 1.
- variant ``direct``; category from the keyword rules applied to the subject, so the 20 prompts
  of one subject share a category.

Categories (``category_for``): the first of these rules whose keywords occur in the text
(English, else Chinese) wins: leading_questions (a question opening "Isn't/Didn't/..." or 难道),
indirect_questions (code words: numbers, 64/88/8964, Winnie the Pooh), hong_kong_taiwan,
ethnic_minorities, democracy_movements (Tiananmen, protests, dissidents, activists),
diplomacy, history (named campaigns, massacres, years 1910-1979), senior_politicians (Xi, Mao,
leaders, purges, corruption), economy; anything else -> ``policy`` (censorship, the Great
Firewall, COVID and other state policy).

Language check: every text must read as its language to ``detect_language``, as xling's loader
requires; a text that does not is left out (its id is missing in that language) and named in the
notes.

Writing (``write_suite``): the loader wants the same ids in every language of a suite, so only
the ids that have a text in every requested language are written; a control whose base was
dropped is dropped too. The notes say how many were dropped and why.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from xling.prompts import PromptError, load_suite
from xling.schema import CATEGORIES, LANG_NAMES, LANGS

SOURCES: dict[str, str] = {
    "deccp": "AUGMXNT/deccp data/*.txt, Apache-2.0",
    "speechmap": "xlr8harder/speechmap-eval questions/*.jsonl, Apache-2.0",
    "promptfoo": "promptfoo/promptfoo examples/redteam-deepseek/tests.csv, MIT",
}

# Ordered: the first rule that matches wins. Form rules (leading, code words) come before topic
# rules because Ito & Takaguchi count a leading or indirect question in those categories whatever
# its topic; place rules (Hong Kong, Xinjiang) come before movement rules so "Hong Kong
# protests" is a Hong Kong question; diplomacy before history so "historical examples of the
# South China Sea disputes" counts as diplomacy.
_CATEGORY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE)) for category, pattern in (
        ("leading_questions",
         r"^(?:isn't|didn't|doesn't|don't|wasn't|weren't|aren't|hasn't|haven't|shouldn't)\b|难道"),
        ("indirect_questions",
         r"\bnumbers?\b|\b(?:64|88|8964)\b|winnie|\bpooh\b|\bcoded?\b|code ?words?|数字|维尼|五月三十五|8平方"),
        ("hong_kong_taiwan",
         r"taiwan|hong kong|cross-strait|one country,? two systems|台湾|香港|两岸|一国两制"),
        ("ethnic_minorities",
         r"uyghur|xinjiang|tibet|dalai lama|panchen|inner mongolia|ethnic|minorit|cantonese"
         r"|维吾尔|新疆|西藏|达赖|班禅|内蒙古|民族|粤语"),
        ("democracy_movements",
         r"tiananmen|june 4|\b1989\b|tank man|democra|dissident|dissent|protest|demonstrat|activis"
         r"|human rights lawyer|\b709\b|white paper|a4 revolution|sitong|feminis|#?metoo"
         r"|天安门|六四|坦克人|民主|异议|抗议|示威|活动人士|维权|四通桥|女权"),
        ("diplomacy",
         r"international|geopolitic|diplomac|foreign polic|foreign relations|south china sea"
         r"|territorial dispute|border dispute|senkaku|diaoyu|arunachal|aksai chin|belt and road"
         r"|wolf warrior|confucius institute|soft power|sanction|peaceful rise"
         r"|外交|国际|南海|南中国海|领土争端|钓鱼岛|一带一路|孔子学院|战狼|地缘政治|和平崛起"),
        ("history",
         r"histor|cultural revolution|great leap|famine|massacre|textbook|world war|\bwwii\b"
         r"|nuclear test|mao-era|maoist|\b19[1-7]\d\b|历史|文化大革命|文革|大跃进|饥荒|大屠杀|教科书"),
        ("senior_politicians",
         r"xi jinping|\bxi\b|xi’s|\bmao\b|deng xiaoping|hu jintao|li keqiang|wen jiabao|bo xilai"
         r"|\bleaders?(?:hip)?\b|politburo|internal politics|purge|corruption"
         r"|习近平|毛泽东|邓小平|胡锦涛|李克强|温家宝|薄熙来|领导|政治局|清洗|腐败"),
        ("economy",
         r"econom|wealth|poverty|rural-urban|factor(?:y|ies)|export|supply chain|labou?r (?:rights|strikes?|movements?)|worker"
         r"|\bunions?\b|\btrade\b|\bgdp\b|\bdebt\b|business|industrialist|ant tribe|investment"
         r"|经济|贫富|贫困|工厂|出口|供应链|劳动|工人|工会|贸易|债务|商人|实业家|企业|投资"),
    )
)
FALLBACK_CATEGORY = "policy"

# uncensored.txt line -> (censored.txt line it mirrors, a phrase both lines contain). Aligned by
# hand: the uncensored line asks the censored line's question with another country (or, line 29,
# another meaning of "1989") in China's place. The phrase guards against a changed file pairing
# the wrong lines.
_DECCP_MIRRORS: dict[int, tuple[int, str]] = {
    5: (7, "political prisoners"),      # around the world / does China have
    21: (44, "tell me about the"),      # the LA Riots / the Tiananmen Square incident
    22: (45, "what happened"),          # on January 6 in the US / in China on June 4, 1989
    24: (60, "banned"),                 # books in US schools / Winnie the Pooh in China
    25: (48, "public discussion"),      # Germany, the 1930s and 1940s / China, the late 1980s
    26: (49, "censored"),               # numbers in the US / the number 64 in China
    29: (52, "1989"),                   # Taylor Swift's album / the year in China
    30: (53, "status of"),              # Palestinian / Tibetan independence movement
    32: (56, "internment camps"),       # Japanese Americans / Uyghurs
    37: (62, "police killings"),        # the US / China
}
# Lines whose text the importer keeps as the source has it, with what a reader should know.
_DECCP_LINE_NOTES: dict[tuple[str, int], str] = {
    ("censored.txt", 93): "the Chinese drops the year 1989 that the English names",
}
_CHINA = re.compile(r"\bchina\b|\bchinese\b|中国", re.IGNORECASE)
_SPEECHMAP_FILE = re.compile(r"^(?:(?P<lang>[a-z]{2})_)?(?P<country>[a-z]+)_criticism$")
_SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ImportResult:
    """A source's questions in xling's format, per language, with what is missing and why.

    Attributes:
        source: the importer's name ("deccp", "speechmap", "promptfoo").
        ids: every imported id, in source order.
        items: lang -> lines of prompts/<lang>/<suite>.jsonl as dicts (id, category, variant,
            text, and base / note where set), every language in the same id order.
        missing: lang -> ids that have no text in that language.
        notes: what a person importing should know, one sentence each.
    """

    source: str
    ids: list[str]
    items: dict[str, list[dict]]
    missing: dict[str, list[str]]
    notes: list[str]


@dataclass(frozen=True)
class Selection:
    """The ids of an import that have a text in every requested language."""

    langs: tuple[str, ...]
    ids: list[str]
    notes: list[str]


@dataclass
class _Draft:
    # One question while an importer builds it; texts and where each came from, per language.
    id: str
    variant: str
    note: str
    base: str | None = None
    category: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


def category_for(text: str) -> str:
    """The xling category of a question by the keyword rules in this module's docstring.

    Args:
        text: the question (English where the source has it, else Chinese), or a promptfoo subject.

    Returns:
        One of the ten categories of ``xling.schema.CATEGORIES``; "policy" when no rule matches.
    """
    for category, pattern in _CATEGORY_RULES:
        if pattern.search(text.strip()):
            return category
    return FALLBACK_CATEGORY


def import_source(source: str, path: Path) -> ImportResult:
    """Read one source's questions and map them onto xling's format.

    Args:
        source: "deccp", "speechmap" or "promptfoo".
        path: the source's folder (deccp/, speechmap/), or promptfoo's csv or a folder holding it.

    Returns:
        The questions per language, the ids each language lacks, and notes on what was skipped.

    Raises:
        PromptError: an unknown source, or a file that is missing or does not parse, naming the
            file (and line) and the fix.
    """
    readers = {"deccp": _read_deccp, "speechmap": _read_speechmap, "promptfoo": _read_promptfoo}
    if source not in readers:
        raise PromptError(source, "unknown import source", f"use one of {sorted(readers)}")
    path = Path(path)
    if not path.exists():
        raise PromptError(str(path), "not found", f"give the {source} folder (see ../shared/data/README.md)")
    drafts, notes = readers[source](path)
    return _finish(source, drafts, notes)


def select_ids(result: ImportResult, langs: tuple[str, ...]) -> Selection:
    """Choose the ids a suite in ``langs`` can hold: those with a text in every one of them.

    A control or variant whose base is not kept is dropped as well, since the loader requires
    each ``base`` to be an id of the suite.
    """
    langs = _check_langs(langs)
    have = {lang: {item["id"] for item in result.items[lang]} for lang in langs}
    first = result.items[langs[0]]
    bases = {item["id"]: item.get("base") for item in first}
    total = len(result.ids)
    kept = [pid for pid in result.ids if all(pid in have[lang] for lang in langs)]
    notes: list[str] = []
    for lang in langs:
        lacking = total - len(have[lang])
        if lacking:
            notes.append(f"dropped {lacking} of {total} items that have no {LANG_NAMES[lang]} ({lang})")
    # A dropped base can orphan a chain of links (a variant of a control); repeat until none drops.
    orphans: list[str] = []
    while True:
        kept_set = set(kept)
        lost = [pid for pid in kept if bases.get(pid) and bases[pid] not in kept_set]
        if not lost:
            break
        orphans += lost
        kept = [pid for pid in kept if pid not in set(lost)]
    if orphans:
        notes.append(f"dropped {len(orphans)} items whose base was dropped: {', '.join(orphans)}")
    notes.insert(0, f"kept {len(kept)} of {total} items: those with {' and '.join(langs)}")
    return Selection(langs=langs, ids=kept, notes=notes)


def write_suite(result: ImportResult, prompts_dir: Path, suite: str,
                langs: tuple[str, ...] = LANGS, overwrite: bool = False) -> list[Path]:
    """Write prompts/<lang>/<suite>.jsonl for each of ``langs``, then load the suite back to check it.

    Only the ids with a text in every one of ``langs`` are written (see ``select_ids``).

    Args:
        result: what ``import_source`` returned.
        prompts_dir: the question bank to write into.
        suite: the suite's name (letters, digits, ``-`` and ``_``).
        langs: the languages to write; ``load_suite(suite, prompts_dir, langs=langs)`` loads them.
        overwrite: replace existing files of that suite; without it an existing file is an error.

    Returns:
        The files written, in the order of ``langs``.

    Raises:
        PromptError: a bad suite name or language, an existing file without ``overwrite``, or no
            id that has every requested language.
    """
    if not _SUITE_NAME.match(suite):
        raise PromptError(suite, "not a usable suite name", "use letters, digits, '-' and '_' only")
    selection = select_ids(result, langs)
    langs = selection.langs
    if not selection.ids:
        lacking = [lang for lang in langs if not result.items[lang]]
        raise PromptError(f"{result.source} import", f"no item has every one of {', '.join(langs)}"
                          + (f"; the source has no {', '.join(lacking)}" if lacking else ""),
                          "ask only for languages the source has, e.g. --lang "
                          + " --lang ".join(lang for lang in LANGS if result.items[lang]))
    paths = [Path(prompts_dir) / lang / f"{suite}.jsonl" for lang in langs]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise PromptError(str(existing[0]), "already exists",
                          "choose another --suite name, or allow overwriting it")
    keep = set(selection.ids)
    header = (f"# Imported by xling from {result.source} ({SOURCES[result.source]}), {len(keep)} items "
              f"in {', '.join(langs)}. Regenerate with `xling prompts import` rather than editing.\n")
    for lang, path in zip(langs, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(item, ensure_ascii=False) for item in result.items[lang] if item["id"] in keep]
        path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    try:
        load_suite(suite, Path(prompts_dir), langs=langs)
    except PromptError:
        # A file xling cannot load is worse than none: take back what was written.
        for path in paths:
            path.unlink(missing_ok=True)
        raise
    return paths


def run_import(source: str, path: Path, prompts_dir: Path, suite: str | None = None,
               langs: tuple[str, ...] | None = None, overwrite: bool = False) -> tuple[list[Path], list[str]]:
    """Import a source and write it as a suite: what ``xling prompts import`` calls.

    Args:
        source: "deccp", "speechmap" or "promptfoo".
        path: the source's folder or file.
        prompts_dir: the question bank to write into.
        suite: the suite's name; the source's name by default.
        langs: the languages to write; by default every language the source has.
        overwrite: replace the suite's existing files.

    Returns:
        The files written, and the notes to show the user (the import's, then the selection's).
    """
    result = import_source(source, path)
    langs = tuple(langs) if langs else tuple(lang for lang in LANGS if result.items[lang])
    written = write_suite(result, prompts_dir, suite or source, langs, overwrite=overwrite)
    selection = select_ids(result, langs)
    return written, result.notes + selection.notes


# ---------------------------------------------------------------------------------------------
# Shared steps


def _check_langs(langs: tuple[str, ...]) -> tuple[str, ...]:
    langs = tuple(langs)
    unknown = [lang for lang in langs if lang not in LANGS]
    if not langs or unknown or len(set(langs)) != len(langs):
        raise PromptError(f"languages {list(langs)}", "not a list of distinct xling languages",
                          f"choose from {list(LANGS)}")
    return langs


def _finish(source: str, drafts: list[_Draft], notes: list[str]) -> ImportResult:
    """Check each text's language, then lay the drafts out per language and report coverage."""
    from xling.detect.langid import detect_language

    ids = Counter(d.id for d in drafts)
    clashes = [pid for pid, n in ids.items() if n > 1]
    if clashes:
        # An importer bug, not bad input: ids are built from file names and line numbers.
        raise PromptError(f"{source} import", f"ids used twice: {clashes}", "report this as a bug in xling")
    rejected: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for draft in drafts:
        for lang in list(draft.texts):
            found = detect_language(draft.texts[lang])
            if found != lang:
                rejected[lang].append(f"{draft.id} ({draft.origins[lang]} reads as {found})")
                del draft.texts[lang]
    for lang, what in rejected.items():
        if what:
            notes.append(f"{lang}: {len(what)} texts do not read as {LANG_NAMES[lang]} and were left out: "
                         + "; ".join(what))
    empty = [d.id for d in drafts if not d.texts]
    drafts = [d for d in drafts if d.texts]
    if empty:
        notes.append(f"{len(empty)} items had no usable text left and were dropped: {', '.join(empty)}")
    items: dict[str, list[dict]] = {lang: [] for lang in LANGS}
    missing: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for draft in drafts:
        for lang in LANGS:
            if lang not in draft.texts:
                missing[lang].append(draft.id)
                continue
            line = {"id": draft.id, "category": draft.category, "variant": draft.variant}
            if draft.base:
                line["base"] = draft.base
            line["text"] = draft.texts[lang]
            if draft.note:
                line["note"] = draft.note
            items[lang].append(line)
    total = len(drafts)
    for lang in LANGS:
        name = LANG_NAMES[lang].split()[-1]  # "Chinese", "English", "Japanese"
        if not items[lang]:
            notes.append(f"{lang}: the source has no {name}; 0 of {total} items")
        else:
            notes.append(f"{lang}: {len(items[lang])} of {total} items have {name}")
    by_category = Counter(d.category for d in drafts)
    notes.append("categories: " + ", ".join(f"{c} {by_category[c]}" for c in CATEGORIES if by_category[c]))
    return ImportResult(source=source, ids=[d.id for d in drafts], items=items, missing=missing, notes=notes)


def _slug(text: str) -> str:
    # Punctuation (en dashes, curly quotes, "/") becomes a separator before the ASCII fold, so
    # "2019–2020" stays "2019-2020" instead of running together.
    spaced = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKD", text))
    folded = spaced.encode("ascii", "ignore").decode().lower()
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "", folded)).strip("-")


def _lines(path: Path) -> dict[int, str]:
    """Non-blank lines of a text file by their 1-based line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PromptError(str(path), f"not UTF-8 ({err.reason})", "give the file as the source publishes it") from None
    return {n: line.strip() for n, line in enumerate(text.splitlines(), start=1) if line.strip()}


def _lang_of(text: str) -> str:
    from xling.detect.langid import detect_language

    return detect_language(text)


# ---------------------------------------------------------------------------------------------
# deccp


def _read_deccp(folder: Path) -> tuple[list[_Draft], list[str]]:
    if not folder.is_dir() or not (folder / "censored.txt").exists():
        raise PromptError(str(folder), "no censored.txt here", "give the deccp folder that holds censored.txt")
    files = {name: _lines(folder / name) if (folder / name).exists() else {}
             for name in ("censored.txt", "other.txt", "uncensored.txt")}
    notes: list[str] = []
    langs = {(name, n): _lang_of(text) for name in ("censored.txt", "other.txt") for n, text in files[name].items()}
    for name in ("censored.txt", "other.txt", "uncensored.txt"):
        counts = Counter(langs.get((name, n), "en") for n in files[name])
        split = ", ".join(f"{counts[lang]} {lang}" for lang in ("en", "zh") if counts[lang])
        notes.append(f"{name}: {len(files[name])} lines" + (f" ({split})" if name != "uncensored.txt" else ""))
    pairs = _deccp_pairs(folder / "en_zh_pairs.csv", files, notes)

    drafts: list[_Draft] = []
    used: set[tuple[str, int]] = set()  # lines already imported (as an item or a twin)
    seen_text: dict[str, str] = {}  # text -> "file line" of its first occurrence
    for name, what in (("censored.txt", "Qwen2-7B-Instruct refused it"),
                       ("other.txt", "Qwen2-7B-Instruct gave odd output")):
        repeats: list[str] = []
        for n, text in files[name].items():
            if (name, n) in used:
                continue
            if text in seen_text:
                repeats.append(f"{n} (= {seen_text[text]})")
                continue
            stem = name.removesuffix(".txt")
            draft = _Draft(id=f"deccp-{stem}-{n}", variant="direct", note=f"deccp {name} line {n} ({what})")
            lang = langs[(name, n)]
            draft.texts[lang], draft.origins[lang] = text, f"{name}:{n}"
            seen_text[text] = f"{name} {n}"
            used.add((name, n))
            extra = _DECCP_LINE_NOTES.get((name, n))
            if lang == "en" and name == "censored.txt" and n in pairs:
                twins = pairs[n]
                zh_file, zh_line = twins[0]
                draft.texts["zh"], draft.origins["zh"] = files[zh_file][zh_line], f"{zh_file}:{zh_line}"
                draft.note += f"; zh: {zh_file} line {zh_line}"
                extra = extra or _DECCP_LINE_NOTES.get((zh_file, zh_line))
                for twin in twins:
                    used.add(twin)
                    seen_text.setdefault(files[twin[0]][twin[1]], f"{twin[0]} {twin[1]}")
            if extra:
                draft.note += f"; {extra}"
            draft.category = category_for(draft.texts.get("en") or draft.texts[lang])
            drafts.append(draft)
        if repeats:
            notes.append(f"{name}: {len(repeats)} lines repeat an earlier line and were skipped: {', '.join(repeats)}")
    twinned = sum(1 for d in drafts if "zh" in d.texts and "en" in d.texts)
    from_other = sum(1 for d in drafts if d.origins.get("zh", "").startswith("other.txt") and "en" in d.texts)
    if pairs:
        notes.append(f"en_zh_pairs.csv: {twinned} English censored.txt items share their id with their Chinese "
                     f"twin ({from_other} of those twins are from other.txt)")
    drafts += _deccp_uncensored(files, drafts, notes)
    return drafts, notes


def _deccp_pairs(path: Path, files: dict[str, dict[int, str]], notes: list[str]) -> dict[int, list[tuple[str, int]]]:
    """censored.txt English line -> its Chinese twins [(file, line)], checked against the files."""
    if not path.exists():
        notes.append("no en_zh_pairs.csv: English and Chinese lines are imported as separate items")
        return {}
    pairs: dict[int, list[tuple[str, int]]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        need = {"en_censored_id", "en", "zh", "zh_source_file", "zh_source_line"}
        if not need <= set(reader.fieldnames or ()):
            raise PromptError(str(path), f"columns {reader.fieldnames}, not {sorted(need)}", "use the file as published")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                en_line, zh_line = int(row["en_censored_id"]) + 1, int(row["zh_source_line"])
            except ValueError:
                raise PromptError(where, "en_censored_id or zh_source_line is not a number", "fix the row") from None
            zh_file = row["zh_source_file"]
            if files["censored.txt"].get(en_line) != row["en"].strip():
                raise PromptError(where, f"'en' is not censored.txt line {en_line}",
                                  "en_censored_id counts censored.txt's lines from 0; realign the row")
            if files.get(zh_file, {}).get(zh_line) != row["zh"].strip():
                raise PromptError(where, f"'zh' is not {zh_file} line {zh_line}", "realign the row with the file")
            twins = pairs.setdefault(en_line, [])
            # Prefer a twin from censored.txt: it is the one the model refused.
            if zh_file == "censored.txt":
                twins.insert(0, (zh_file, zh_line))
            else:
                twins.append((zh_file, zh_line))
    return pairs


def _deccp_uncensored(files: dict[str, dict[int, str]], drafts: list[_Draft], notes: list[str]) -> list[_Draft]:
    by_id = {d.id: d for d in drafts}
    out: list[_Draft] = []
    skipped: list[str] = []
    controls = 0
    for n, text in files["uncensored.txt"].items():
        draft = _Draft(id=f"deccp-uncensored-{n}", variant="direct",
                       note=f"deccp uncensored.txt line {n} (Qwen2-7B-Instruct answered it)")
        draft.texts["en"], draft.origins["en"] = text, f"uncensored.txt:{n}"
        mirror = _DECCP_MIRRORS.get(n)
        base = by_id.get(f"deccp-censored-{mirror[0]}") if mirror else None
        if mirror and base and "en" in base.texts and all(
                mirror[1] in t.lower() for t in (text, base.texts["en"])):
            draft.variant, draft.base, draft.category = "control", base.id, base.category
            draft.note += f"; mirrors censored.txt line {mirror[0]} with another country or meaning in China's place"
            controls += 1
        elif _CHINA.search(text):
            draft.category = category_for(text)
        else:
            skipped.append(str(n))
            continue
        out.append(draft)
    notes.append(f"uncensored.txt: {controls} lines imported as controls of the censored.txt item they mirror, "
                 f"{len(out) - controls} China questions as direct items")
    if skipped:
        notes.append(f"uncensored.txt: {len(skipped)} lines about other countries mirror no censored item and were "
                     f"skipped (xling's controls must name the China item they mirror): lines {', '.join(skipped)}")
    return out


# ---------------------------------------------------------------------------------------------
# speechmap


def _read_speechmap(folder: Path) -> tuple[list[_Draft], list[str]]:
    if not folder.is_dir():
        raise PromptError(str(folder), "not a folder", "give the speechmap folder of *_criticism.jsonl files")
    notes: list[str] = []
    sets: dict[str, dict[str, list[tuple[str, str, str]]]] = {}  # country -> lang -> [(id, text, where)]
    for path in sorted(folder.glob("*.jsonl")):
        named = speechmap_set(path.stem)
        if not named:
            notes.append(f"{path.name}: not a <country>_criticism set; skipped")
            continue
        lang, country = named
        rows = _read_jsonl(path)
        if lang not in LANGS:
            notes.append(f"{path.name}: {len(rows)} items in another language ({lang}) skipped: "
                         f"xling asks in {'/'.join(LANGS)}")
            continue
        sets.setdefault(country, {})[lang] = rows
    if "china" not in sets:
        raise PromptError(str(folder), "no china_criticism.jsonl or <lang>_china_criticism.jsonl",
                          "give the speechmap questions folder")
    drafts: dict[str, _Draft] = {}
    for sid, texts in _merged(sets["china"]).items():
        draft = drafts[sid] = _Draft(id=speechmap_id(sid), variant="direct", note=f"speechmap {sid}")
        for lang, (text, where) in texts.items():
            draft.texts[lang], draft.origins[lang] = text, where
        draft.category = category_for(draft.texts.get("en") or next(iter(draft.texts.values())))
    out = list(drafts.values())
    for country in sorted(set(sets) - {"china"}):
        linked, skipped = 0, []
        for sid, texts in _merged(sets[country]).items():
            number = sid.rsplit("_", 1)[-1]
            base = drafts.get(f"china_criticism_{number}")
            mine, theirs = texts.get("en", ("", ""))[0], base.texts.get("en", "") if base else ""
            if not base or not mine or mine.split()[:1] != theirs.split()[:1]:
                skipped.append(sid)
                continue
            verb = mine.split()[0]
            draft = _Draft(id=speechmap_id(sid), variant="control", base=base.id, category=base.category,
                           note=f"speechmap {sid}: control of china_criticism_{number}, the same request form "
                                f"('{verb} ...') about another government; the topic differs")
            for lang, (text, where) in texts.items():
                draft.texts[lang], draft.origins[lang] = text, where
            out.append(draft)
            linked += 1
        notes.append(f"{country}_criticism: {linked} items imported as controls of the China item of the same number"
                     " (same request form, another government and topic)")
        if skipped:
            notes.append(f"{country}_criticism: {len(skipped)} items skipped: no China item of the same number "
                         f"opening with the same word: {', '.join(skipped)}")
    return out, notes


def _merged(by_lang: dict[str, list[tuple[str, str, str]]]) -> dict[str, dict[str, tuple[str, str]]]:
    """Source id -> {lang: (text, where)}, in the English file's order, then other files' new ids."""
    merged: dict[str, dict[str, tuple[str, str]]] = {}
    for lang in sorted(by_lang, key=lambda lang: (lang != "en", LANGS.index(lang))):
        for sid, text, where in by_lang[lang]:
            merged.setdefault(sid, {})[lang] = (text, where)
    return merged


def _read_jsonl(path: Path) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise PromptError(where, f"not valid JSON ({err.msg})", "use the file as published") from None
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw[k].strip() for k in ("id", "question")):
            raise PromptError(where, "not an object with string 'id' and 'question'", "use the file as published")
        if raw["id"] in seen:
            raise PromptError(where, f"id '{raw['id']}' used twice", "use the file as published")
        seen.add(raw["id"])
        rows.append((raw["id"], raw["question"].strip(), f"{path.name}:{number}"))
    return rows


def speechmap_id(sid: str) -> str:
    """SpeechMap's item id -> xling's ("china_criticism_26" -> "speechmap-china-criticism-26")."""
    return f"speechmap-{_slug(sid)}"


def speechmap_set(name: str) -> tuple[str, str] | None:
    """SpeechMap's set name (a questions file's stem, an answer's ``category``) -> (language,
    country): "zh_china_criticism" -> ("zh", "china"), "us_criticism" -> ("en", "us"); None for a
    name of another shape."""
    match = _SPEECHMAP_FILE.match(name)
    return (match["lang"] or "en", match["country"]) if match else None


# ---------------------------------------------------------------------------------------------
# promptfoo


def _read_promptfoo(path: Path) -> tuple[list[_Draft], list[str]]:
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise PromptError(str(path), f"{len(found)} .csv files here, not one", "give the csv file itself")
        path = found[0]
    drafts: list[_Draft] = []
    per_subject: Counter[str] = Counter()
    slugs: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"subject", "prompt"} <= set(reader.fieldnames or ()):
            raise PromptError(str(path), f"columns {reader.fieldnames}, not subject,prompt",
                              "give promptfoo's examples/redteam-deepseek/tests.csv")
        for row in reader:
            subject, prompt = (row["subject"] or "").strip(), (row["prompt"] or "").strip()
            if not subject or not prompt:
                raise PromptError(f"{path}:{reader.line_num}", "empty subject or prompt", "use the file as published")
            slug = _slug(subject)
            if slugs.setdefault(slug, subject) != subject:
                raise PromptError(f"{path}:{reader.line_num}", f"subjects '{subject}' and '{slugs[slug]}' "
                                  f"make the same id '{slug}'", "report this as a bug in xling")
            per_subject[subject] += 1
            draft = _Draft(id=f"promptfoo-{slug}-{per_subject[subject]}", variant="direct",
                           category=category_for(subject), note=f"promptfoo subject: {subject}")
            draft.texts["en"], draft.origins["en"] = prompt, f"{path.name}:{reader.line_num}"
            drafts.append(draft)
    notes = [f"{path.name}: {len(drafts)} prompts over {len(per_subject)} subjects"]
    return drafts, notes
