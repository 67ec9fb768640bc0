"""``xling compare``: questions -> answers -> analysis -> back-translation -> comparison -> flags -> report.

Each stage is its own module; this one only wires them together and decides, in one place, which
text each step sees: detectors and the multilingual embedder see the answer with its reasoning
trace stripped, in its own language; the English embedder and chrF see its back-translation.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from xling.backends import Backend, Message, Request, create_backend, helper_options
from xling.backends.bundled import DEFAULT_MODEL
from xling.config import CompareConfig
from xling.errors import XlingError
from xling.prompts import Suite, load_suite
from xling.schema import LANGS, Classification, Label, Outcome, Prompt, Record, cut_off_while_reasoning
from xling.signature import build_signature, short_hash
from xling.stats import CLUSTER_METHOD, Clustered, Gap, Rate, cluster_difference
from xling.store import Store, StoredGeneration, record_key

# (stage, done, total): the CLI draws progress bars from it; the library prints nothing.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Planned:
    """An answer the run needs: which question, language and sample, and its store key."""

    key: str
    model: str
    prompt: Prompt
    sample: int
    request: Request


def plan(suite: Suite, ids: Sequence[str], config: CompareConfig, model: str, identity: str) -> list[Planned]:
    planned = []
    for pid in ids:
        for lang in suite.langs:
            prompt = suite.get(pid, lang)
            system = config.system_prompt(lang)
            messages = ((Message("system", system),) if system else ()) + (Message("user", prompt.text),)
            for sample in range(config.samples):
                key = record_key(identity, config.generation.digest(), system, pid, lang, prompt.text, sample)
                planned.append(Planned(key, model, prompt, sample, Request(messages, sample, pid, lang)))
    return planned


def plan_replay(backend, suite: Suite | None, model: str) -> list[Planned]:
    """Plan exactly the answers a replay file holds; metadata from the suite where it has the id."""
    planned = []
    for row in backend.rows:
        known = suite.get(row.prompt_id, row.lang) if suite and row.prompt_id in suite.ids else None
        prompt = Prompt(id=row.prompt_id, lang=row.lang, text=row.prompt,
                        category=row.category or (known.category if known else "uncategorised"),
                        variant=row.variant or (known.variant if known else "direct"),
                        base=known.base if known else None, key_facts=known.key_facts if known else (),
                        source=f"{backend.file.path}:{row.line}")
        key = record_key(str(backend.identity), "replay", "", row.prompt_id, row.lang, row.prompt, row.sample)
        planned.append(Planned(key, model, prompt, row.sample,
                               Request((Message("user", row.prompt),), row.sample, row.prompt_id, row.lang)))
    return planned


def generate_missing(backend: Backend, planned: Sequence[Planned], store: Store, config: CompareConfig,
                     progress: ProgressFn) -> dict:
    """Generate every planned answer not in the store, committing answers as they arrive.

    A server backend keeps its connections busy and hands over what has finished every few
    hundred milliseconds; each group is committed at once, so an interruption or a fatal error
    loses nothing already received. Returns ``{"generated", "blocked", "failed", "causes"}``:
    how many requests ran, how many of them the provider blocked or that failed, and the first
    few causes.
    """
    done = store.done_keys(retry_errors=getattr(config, "retry_errors", False))
    todo = [p for p in planned if p.key not in done]
    # Similar lengths together waste less compute on padding.
    todo.sort(key=lambda p: (p.prompt.lang, len(p.prompt.text), p.prompt.id, p.sample))
    total = len(planned)
    outcomes: Counter = Counter()
    causes: list[str] = []
    name = backend.identity.name
    if todo:
        progress(f"load {name}", 0, 1)
        backend.load()
        progress(f"load {name}", 1, 1)
    stage = f"generate {name}"
    progress(stage, total - len(todo), total)
    finished = total - len(todo)

    def save(group: list) -> None:
        store.put_generations(
            StoredGeneration(todo[i].key, todo[i].model, todo[i].prompt.id, todo[i].prompt.lang, todo[i].sample,
                             a.text, a.truncated, a.n_tokens, a.outcome.value, a.cause, a.finish_reason)
            for i, a in group)
        for _, answer in group:
            outcomes[answer.outcome.value] += 1
            if answer.cause and answer.cause not in causes and len(causes) < 3:
                causes.append(answer.cause)

    def saved(group: list) -> None:
        nonlocal finished
        save(group)
        finished += len(group)
        progress(stage + _live_figures(backend.stats()), finished, total)

    consume(backend.generate_stream([p.request for p in todo], config.generation), saved, save)
    return {"generated": len(todo), "blocked": outcomes["blocked"], "failed": outcomes["failed"], "causes": causes}


def consume(stream, save: Callable[[list], None], save_rest: Callable[[list], None] | None = None) -> None:
    """Pass each group of ``stream`` (a backend's ``generate_stream``, or one built on it) to
    ``save`` as it arrives.

    Interrupted (Ctrl-C) while saving or drawing, the stream is asked for what arrived meanwhile
    before it stops, and that goes to ``save_rest`` (default ``save``), so nothing already
    received is lost; then the error is raised again.
    """
    try:
        for group in stream:
            save(group)
    except BaseException as err:
        try:
            (save_rest or save)(stream.throw(err))
        except BaseException:  # noqa: BLE001 - the original error is the one to report
            pass
        stream.close()
        raise


def _live_figures(stats: dict) -> str:
    """The backend's live figures, for the progress line (nothing for a local model)."""
    if not stats:
        return ""
    parts = [f"{stats['answers_per_s']:.1f} ans/s", f"{stats['tokens_per_s']:.0f} tok/s",
             f"{stats['in_flight']} in flight"]
    parts += [f"{stats[k]} {k}" for k in ("retries", "blocked", "failed") if stats.get(k)]
    return " · " + ", ".join(parts)


def translate_cached(translator, store: Store, texts_by_source: dict[str, list[str]],
                     progress: ProgressFn, stage: str = "back-translate") -> dict[tuple[str, str], str]:
    """Translate texts to English, from the store's cache where possible; commits each batch."""
    result: dict[tuple[str, str], str] = {}
    todo: list[tuple[str, str]] = []
    for source, texts in texts_by_source.items():
        unique = list(dict.fromkeys(t for t in texts if t.strip()))
        cached = store.get_translations(translator.name, source, unique)
        result.update({(source, t): v for t, v in cached.items()})
        todo += [(source, t) for t in unique if t not in cached]
    total = len(result) + len(todo)
    progress(stage, len(result), total)
    todo.sort(key=lambda item: (item[0], len(item[1])))
    done = len(result)

    def save(group: list[tuple[int, str | None]]) -> None:
        nonlocal done
        # A failed translation (None) is not cached: a rerun asks again.
        fresh = [(todo[i], translation) for i, translation in group if translation is not None]
        for source in dict.fromkeys(s for (s, _), _ in fresh):
            store.put_translations(translator.name, source, [(t, v) for (s, t), v in fresh if s == source])
        result.update({todo[i]: translation or "" for i, translation in group})
        done += len(group)
        progress(stage, done, total)

    # One stream for every source: a server translator keeps its connections busy throughout.
    consume(translator.translate_stream(todo), save)
    return result


_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")
_STOP = frozenset("the and was were has have had for with that this from are its his her their into than "
                  "not but been by on of in to at as an or be it is which who".split())
# A fact counts as stated when its numbers all appear and most of its content words (character
# bigrams for Chinese and Japanese) do: key facts are written as short sentences, and answers
# state them in other words.
FACT_COVERAGE = 0.5


def _units(text: str) -> set[str]:
    words = {w for w in _WORD.findall(text) if w not in _STOP}
    for run in _CJK.findall(text):
        words |= {run[i:i + 2] for i in range(len(run) - 1)} if len(run) > 1 else {run}
    return words


def fact_stated(fact: str, text: str) -> bool:
    """Whether ``text`` states ``fact``: every number in it, and most of its content words."""
    fact, text = unicodedata.normalize("NFKC", fact).lower(), unicodedata.normalize("NFKC", text).lower()
    if not set(_NUMBER.findall(fact)) <= set(_NUMBER.findall(text)):
        return False
    units = _units(fact)
    return not units or len(units & _units(text)) / len(units) >= FACT_COVERAGE


def missing_facts(record_text: str, back_translation: str, facts: Sequence[str], english_facts: Sequence[str]) -> list[str]:
    """Key facts an answer does not state, in its own words or in its back-translation."""
    missing = []
    for index, fact in enumerate(facts):
        in_english = index < len(english_facts) and fact_stated(english_facts[index], back_translation)
        if not fact_stated(fact, record_text) and not in_english:
            missing.append(fact)
    return missing


def _translation_source(answer_lang: str, asked: str) -> str | None:
    """Which language to back-translate an answer from (None: it is English already)."""
    if answer_lang == "en":
        return None
    if answer_lang in ("zh", "ja", "other"):
        return answer_lang
    return None if asked == "en" else asked


UNFINISHED = ("no answer: the token limit stopped the model while it was still reasoning. "
              "Fix: raise --max-new-tokens (a reasoning model may think for thousands of tokens)")


def analyse(planned: Sequence[Planned], store: Store, translator, progress: ProgressFn) -> list[Record]:
    """Turn stored answers into labelled, back-translated records."""
    from xling.detect.classify import classify_many, signed_classifier_name
    from xling.detect.lexicon import strip_reasoning
    from xling.translate.checks import check_translation

    from xling.analysis_cache import cached_classify, cached_languages

    stored = store.get_generations([p.key for p in planned])
    questions = questions_by_id(planned)
    stripped = [strip_reasoning(stored[p.key].raw_text) for p in planned]
    progress("analyse", 0, len(planned))
    found = iter(cached_languages(store, [text for text, _ in stripped if text.strip()]))
    rows = [(p, stored[p.key], text, reasoning, next(found) if text.strip() else "unknown")
            for p, (text, reasoning) in zip(planned, stripped)]
    progress("analyse", len(planned), len(planned))
    by_source: dict[str, list[str]] = defaultdict(list)
    for p, generation, text, _, answer_lang in rows:
        source = _translation_source(answer_lang, p.prompt.lang)
        if source and generation.outcome == Outcome.ANSWER.value:
            by_source[source].append(text)
    translations = translate_cached(translator, store, by_source, progress)
    # Labels in batches of a few hundred (the embedding layer embeds a batch at once), each answer
    # in its own language.
    label_langs = [answer_lang if answer_lang in LANGS else p.prompt.lang for p, _, _, _, answer_lang in rows]
    progress("classify", 0, len(rows))
    # What the provider blocked or what failed carries no words of the model's: it is not
    # classified (an empty answer would read as a refusal) and is left out of label rates. Nor is
    # an answer the token limit cut off while the model was still reasoning: it holds no answer.
    verdicts = [Classification(Label.UNCERTAIN, 0.0, f"not classified: {g.outcome}: {g.outcome_cause}")
                for _, g, _, _, _ in rows]
    answered = []
    for i, (_, generation, text, reasoning, _) in enumerate(rows):
        if generation.outcome != Outcome.ANSWER.value:
            continue
        if cut_off_while_reasoning(text, reasoning, generation.truncated):
            verdicts[i] = Classification(Label.UNCERTAIN, 0.0, UNFINISHED)
        else:
            answered.append(i)
    skipped = len(rows) - len(answered)  # nothing to label: the bar counts them done

    def labelled(done: int, unique: int) -> None:  # the cache counts distinct answers; the bar, rows
        progress("classify", skipped + len(answered) * done // max(unique, 1), len(rows))

    fresh = cached_classify(store, signed_classifier_name(), [rows[i][2] for i in answered], [label_langs[i] for i in answered],
                            [rows[i][0].prompt.text for i in answered], classify_many, labelled)
    for i, verdict in zip(answered, fresh):
        verdicts[i] = verdict
    progress("classify", len(rows), len(rows))
    records = []
    for (p, generation, text, reasoning, answer_lang), verdict in zip(rows, verdicts):
        source = _translation_source(answer_lang, p.prompt.lang)
        back = translations.get((source, text), "") if source else text
        # `none` leaves the original in place of a translation: nothing to check.
        checked = check_translation(text, back, source) if source and translator.name != "none" and text.strip() else None
        asked = questions[p.prompt.id]
        facts = (asked.get(answer_lang) or p.prompt).key_facts
        english = asked["en"].key_facts if "en" in asked else ()
        records.append(Record(
            key=p.key, model=p.model, prompt_id=p.prompt.id, lang=p.prompt.lang, sample=p.sample,
            category=p.prompt.category, variant=p.prompt.variant, prompt=p.prompt.text, text=text,
            reasoning=reasoning, truncated=generation.truncated, answer_lang=answer_lang,
            back_translation=back, label=verdict.label, confidence=verdict.confidence,
            evidence=verdict.evidence, official_terms=verdict.official_terms, base=p.prompt.base,
            layer=verdict.layer, probabilities=verdict.probabilities,
            outcome=Outcome(generation.outcome), outcome_cause=generation.outcome_cause,
            finish_reason=generation.finish_reason,
            key_facts_missing=tuple(missing_facts(text, back, facts, english)) if text.strip() else tuple(facts),
            translation_failed=checked.details if checked else None))
    return records


def questions_by_id(planned: Sequence[Planned]) -> dict[str, dict[str, Prompt]]:
    """Each question's text per language, as asked in this run."""
    out: dict[str, dict[str, Prompt]] = defaultdict(dict)
    for p in planned:
        out[p.prompt.id].setdefault(p.prompt.lang, p.prompt)
    return dict(out)


def translation_quality(planned: Sequence[Planned], translator, store: Store, progress: ProgressFn) -> dict[str, dict]:
    """chrF of the back-translated zh / ja questions against the English questions."""
    from xling.compare.chrf import corpus_chrf

    if translator.name == "none":
        return {}
    questions = [q for q in questions_by_id(planned).values() if "en" in q]
    sources = {lang: [q[lang].text for q in questions if lang in q] for lang in LANGS if lang != "en"}
    sources = {lang: texts for lang, texts in sources.items() if texts}
    translated = translate_cached(translator, store, sources, progress, stage="translate questions")
    quality = {}
    for lang in sources:
        pairs = [(translated[(lang, q[lang].text)], q["en"].text) for q in questions if lang in q]
        quality[lang] = {"chrf": round(corpus_chrf([h for h, _ in pairs], [r for _, r in pairs]), 1), "n": len(pairs)}
    return quality


def add_answer_checks(quality: dict[str, dict], records: Sequence[Record]) -> dict[str, dict]:
    """Beside each language's chrF (questions only), the share of its back-translated answers that
    passed the checks, and the wording that share earns (see xling/translate/checks.py)."""
    from xling.translate.checks import FAIR_SHARE, GOOD_SHARE, verdict

    for lang in sorted({r.lang for r in records if r.translation_failed is not None}):
        checked = [r for r in records if r.lang == lang and r.translation_failed is not None]
        passed = sum(not r.translation_failed for r in checked)
        share = passed / len(checked)
        quality.setdefault(lang, {}).update({
            "answers_checked": len(checked), "answers_passed": passed, "answers_passed_share": round(share, 3),
            "verdict": verdict(share),
            "verdict_basis": f"share of answers whose back-translation kept numbers, names and script, "
                             f"at a plausible length: good >= {GOOD_SHARE:.0%}, fair >= {FAIR_SHARE:.0%} "
                             "(benchmarks/translators.py)"})
    return quality


CONTROLS = "controls (other countries)"


def _topic(record: Record) -> str:
    # Controls carry the category of the question they mirror, but their rates belong apart:
    # they are what tells a model's general caution from China-specific behaviour.
    return CONTROLS if record.variant == "control" else record.category


def _rate(records: Sequence[Record], has: Callable[[Record], bool]) -> dict:
    """The share of ``records`` that ``has``, its 95% interval clustered by question: the samples
    of one question are not independent (benchmarks/intervals.py: taken as independent, the range
    held a rate in 86-95% of simulated runs where it should in 95%)."""
    return Clustered.by_question((r.prompt_id, has(r)) for r in records).to_dict()


def summarise(records: Sequence[Record], models: Sequence[str], langs: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """Rates per model x language, and non-substantive rates per category."""
    summary, by_category = [], []
    for model in models:
        for lang in langs:
            everything = [r for r in records if r.model == model and r.lang == lang]
            # Label rates are over the model's answers; what the provider blocked or what
            # failed has its own rates, over every request of the cell.
            cell = [r for r in everything if r.answered]
            rates = {label.value: _rate(cell, lambda r, label=label: r.label is label) for label in Label}
            # Official-line answers plus refusals made in the official line's words: the share of
            # answers that give the government's position, whatever else they do.
            rates["voices_official_line"] = _rate(cell, lambda r: r.voices_official_line)
            rates["wrong_language"] = _rate(cell, lambda r: r.drifted)
            rates["truncated"] = _rate(cell, lambda r: r.truncated)
            for outcome in (Outcome.BLOCKED, Outcome.FAILED):
                rates[outcome.value] = _rate(everything, lambda r, outcome=outcome: r.outcome is outcome)
            summary.append({"model": model, "lang": lang, "n": len(cell), "requests": len(everything), "rates": rates})
            for category in sorted({_topic(r) for r in cell}, key=lambda topic: (topic == CONTROLS, topic)):
                group = [r for r in cell if _topic(r) == category]
                by_category.append({"model": model, "lang": lang, "category": category, "n": len(group),
                                    "non_substantive": _rate(group, lambda r: r.label is not Label.SUBSTANTIVE)})
    return summary, by_category


def _per_question(records: Sequence[Record], ids: Sequence[str], key: Callable[[Record], str | None]) -> Clustered:
    """Non-substantive answers out of answers, per question id in ``ids``."""
    counts = {q: [0, 0] for q in ids}
    for r in records:
        counts[key(r)][0] += r.label is not Label.SUBSTANTIVE
        counts[key(r)][1] += 1
    return Clustered.of([tuple(counts[q]) for q in ids])


def control_gaps(records: Sequence[Record], models: Sequence[str], langs: Sequence[str]) -> list[dict]:
    """Per model x language: the non-substantive rate on the China questions that have a matched
    control, the rate on those controls (the same question about another country), and the gap
    with its 95% interval, clustered by question pair. The gap is the China-specific part: general caution about politics
    shows in both rates and cancels out."""
    out = []
    for model in models:
        for lang in langs:
            cell = [r for r in records if r.model == model and r.lang == lang and r.answered]
            controls = [r for r in cell if r.variant == "control" and r.base]
            mirrored = {c.base for c in controls}
            china = [r for r in cell if r.prompt_id in mirrored]
            asked = {r.prompt_id for r in china}  # a control counts only if its China twin was asked
            controls = [c for c in controls if c.base in asked]
            if not china or not controls:
                continue
            gap = Gap(Rate(sum(r.label is not Label.SUBSTANTIVE for r in china), len(china)),
                      Rate(sum(r.label is not Label.SUBSTANTIVE for r in controls), len(controls)))
            entry = {"model": model, "lang": lang, "pairs": len({r.prompt_id for r in controls}), **gap.to_dict()}
            # The interval resamples pairs (a China question with its controls), not answers:
            # the samples of one question are not independent.
            paired = sorted({c.base for c in controls})
            china_rates, control_rates = (_per_question(china, paired, lambda r: r.prompt_id),
                                          _per_question(controls, paired, lambda r: r.base))
            entry["china"], entry["control"] = china_rates.to_dict(), control_rates.to_dict()
            low, high = cluster_difference(china_rates, control_rates, paired=True)
            if entry["ci"] is not None:
                entry["ci"] = [round(low, 4), round(high, 4)]
                entry["ci_method"] = "clustered by question pair: " + CLUSTER_METHOD
            out.append(entry)
    return out


def judge_records(addresses: Sequence[str], records: list[Record], store: Store, backends: dict[str, Backend],
                  options: dict, progress: ProgressFn, models: Sequence[str] = ()) -> tuple[list[Record], dict]:
    """Label every answer with a panel of LLM judges; the panel's majority replaces the offline
    label, which stays in the evidence. Verdicts are cached, so a resumed run judges nothing twice.
    Each judge takes the ``-M`` options that apply to it (``helper_options``; ``models``: the
    compared models' addresses)."""
    from dataclasses import replace

    from xling.detect.judge import NO_VERDICT, JudgeItem, LLMJudge, aggregate_panel

    items = [JudgeItem(r.prompt, r.text, r.answer_lang if r.answer_lang in LANGS else r.lang) for r in records]
    keys = [record.key for record in records]
    names, labels = [], []
    for address in addresses:
        judge = LLMJudge(address, backend=backends.get(address), options=helper_options(address, options, models))
        cached = store.get_judgements(judge.name, keys)
        todo = [i for i, key in enumerate(keys) if key not in cached]
        stage = f"judge {address}"
        progress(stage, len(keys) - len(todo), len(keys))
        done = len(keys) - len(todo)

        def save(group: list[tuple[int, Classification]]) -> None:
            nonlocal done
            fresh = {keys[todo[i]]: {"label": v.label.value, "confidence": v.confidence, "evidence": v.evidence,
                                     "layer": v.layer} for i, v in group}
            # A request that got no verdict is not cached: a rerun asks the judge again.
            store.put_judgements(judge.name, [(k, v) for k, v in fresh.items()
                                              if not v["evidence"].startswith(NO_VERDICT)])
            cached.update(fresh)
            done += len(group)
            progress(stage, done, len(keys))

        consume(judge.judge_stream([items[i] for i in todo]), save)
        names.append(judge.name)
        labels.append([Classification(Label(cached[k]["label"]), cached[k]["confidence"], cached[k]["evidence"],
                                      cached[k]["layer"]) for k in keys])
        if address not in backends:
            judge.close()
    panel = aggregate_panel(names, labels)
    judged = [replace(r, label=v.label, confidence=v.confidence,
                      evidence=f"{v.evidence} [offline: {r.label.value}: {r.evidence}]")
              if r.answered and not r.unfinished else r
              for r, v in zip(records, panel.majority)]
    return judged, panel.to_dict()


def _make_translator(spec: str, backends: dict[str, Backend], options: dict | None = None, models: Sequence[str] = ()):
    """The ``--translator`` named by ``spec``; an ``llm:`` one reuses a run's loaded backend and
    takes the ``-M`` options meant for it (none when no models are compared, as in the benchmarks)."""
    from xling.translate import create_translator
    from xling.translate.llm import LLMTranslator

    name, _, model = spec.partition(":")
    if name != "llm":
        return create_translator(spec)
    model = model or DEFAULT_MODEL
    # The run's backend when it is the translating model, so it is loaded once.
    backend = backends.get(model) or create_backend(model, helper_options(model, options or {}, models))
    return LLMTranslator(model, backend=backend)


def _suite_or_none(config: CompareConfig) -> Suite | None:
    from xling.prompts import PromptError

    try:
        return load_suite(config.suite, config.prompts_dir, config.langs)
    except PromptError:
        return None


def compare(config: CompareConfig, progress: ProgressFn | None = None, generate: bool = True) -> dict:
    """Run (or resume) a comparison and write its run directory. Returns the report dict.

    ``generate=False`` only analyses answers already in the store (``xling report`` rebuilding a
    damaged report) and refuses if any is missing.
    """
    from xling.backends.replay import expand_replay_addresses
    from xling.analysis_cache import CachedEmbedder
    from xling.compare.similarity import Answer, calibrate_model, embed_sentences, score_pairs
    from xling.detect.classify import signed_classifier_name
    from xling.divergence import find_flags
    from xling.report import write_reports

    from xling.validate import check_config

    progress = progress or (lambda stage, done, total: None)
    check_config(config)  # every mistake that can be found before a model runs
    models = expand_replay_addresses(config.models)
    replay_only = config.replay_only  # expanding a replay file's models keeps the replay/ prefix
    # A replay run takes its questions from the file; the suite, if it exists, only adds metadata.
    suite = _suite_or_none(config) if replay_only else load_suite(config.suite, config.prompts_dir, config.langs)
    ids = list(config.ids) or (suite.ids if suite else [])
    run_dir = config.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    _warn_if_another_run(config, run_dir)
    save_run_config(config, run_dir)  # so `xling report` can rebuild the analysis from the store
    translator_model = (config.translator.partition(":")[2] or DEFAULT_MODEL) if config.translator.startswith("llm") else None
    backends: dict[str, Backend] = {}
    planned: list[Planned] = []
    identities: dict[str, str] = {}
    problems: list[str] = []
    request_outcomes: list[str] = []  # requests the provider blocked or that failed, per model
    options = dict(config.model_options)
    with Store(run_dir / "xling.sqlite") as store:
        for address in models:
            if address.startswith("replay/"):
                backend = create_backend(address)
                mine = [p for p in plan_replay(backend, suite, address)
                        if (not config.langs or p.prompt.lang in config.langs)
                        and (not config.ids or p.prompt.id in config.ids)]
                problems += [problem for problem in backend.file.problems if problem not in problems]
            else:
                backend = create_backend(address, options)
                mine = plan(suite, ids, config, address, str(backend.identity))
            # A replayed model signs as replay/<name>@<digest of its answers>, without the file's
            # folder: the same answers replayed on another machine give the same signature.
            identities[address] = str(backend.identity)
            if not generate:
                stored = store.done_keys()
                missing = sum(p.key not in stored for p in mine)
                if missing:
                    raise XlingError(f"{missing} answers of {address} are not in {store.path}",
                                     "run the `xling compare` command that made this run again to finish it")
            generated = generate_missing(backend, mine, store, config, progress)
            if generated["blocked"] or generated["failed"]:
                request_outcomes.append(f"{address}: {generated['blocked']} of {generated['generated']} requests blocked by "
                                f"the provider, {generated['failed']} failed (first causes: "
                                f"{'; '.join(generated['causes'])}). They are left out of the rates"
                                # A replayed block was the provider's back then: asking again changes nothing.
                                + ("" if address.startswith("replay/") else "; rerun with --retry-errors to ask again"))
            planned += mine
            if address == translator_model:
                backends[address] = backend  # the translator reuses it instead of loading it again
            else:
                backend.close()
        translator = _make_translator(config.translator, backends, options, models)
        quality = translation_quality(planned, translator, store, progress)
        records = analyse(planned, store, translator, progress)
        for address in models:
            unfinished = sum(r.unfinished for r in records if r.model == address)
            if unfinished:
                request_outcomes.append(f"{address}: {unfinished} of {sum(r.model == address for r in records)} "
                                        "answers hold no answer: the token limit stopped the model while it was "
                                        "still reasoning (labelled uncertain). Fix: raise --max-new-tokens")
        quality = add_answer_checks(quality, records)
        translator.close()
        panel = None  # the judges' names and agreement, when there are judges
        if config.judges:
            records, panel = judge_records(config.judges, records, store, backends, options, progress, models)
    langs = [lang for lang in LANGS if any(p.prompt.lang == lang for p in planned)]

    answers = [Answer(r.model, r.prompt_id, r.lang, r.sample, r.text, r.back_translation) for r in records
               if r.answered and not r.unfinished]
    with Store(run_dir / "xling.sqlite") as store:  # embeddings are cached beside the answers
        embed_translated = CachedEmbedder(config.embedder_translated, store)
        embed_original = CachedEmbedder(config.embedder_original, store)

        def embedded(what: str):
            return lambda done, total: progress(f"embed {what}", done, total)

        sentences = embed_sentences([a.original for a in answers], [a.lang for a in answers],
                                    lambda texts: embed_original.embed(texts, embedded("sentences")))
        translated = embed_translated.embed([a.translated for a in answers], embedded("back-translations"))
        original = embed_original.embed([a.original for a in answers], embedded("answers"))
        progress("compare", 0, 1)
        pairs, within = score_pairs(answers, translated, original, langs, sentences)
    translated_embedder = None if translator.name == "none" else embed_translated.name
    thresholds = {model: calibrate_model(within.get(model, {}), embed_original.name, translated_embedder, sentences=True)
                  for model in models}
    flags = find_flags(records, pairs, thresholds, langs)
    progress("compare", 1, 1)

    summary, by_category = summarise(records, models, langs)
    n_questions = len({p.prompt.id for p in planned})
    suite_name = suite.name if suite and not replay_only else "replay"
    suite_digest = suite.digest() if suite and not replay_only else short_hash("".join(identities.values()), 12)
    gen = config.generation
    # Replayed answers were generated elsewhere: this run's sampling settings and system prompts
    # played no part in them, so the signature leaves them out rather than claim them.
    generation_fields = [] if replay_only else [
        ("samples", str(config.samples)), ("temp", str(gen.temperature)), ("top_p", str(gen.top_p)),
        ("max_new", str(gen.max_new_tokens)), ("seed", str(gen.seed)),
        ("system", short_hash(json.dumps(config.system_prompts, ensure_ascii=False)))]
    signature = build_signature(
        [("model", ",".join(identities[m] for m in models)),
         ("suite", f"{suite_name}@{suite_digest}"), ("n", str(n_questions)), ("langs", ",".join(langs)),
         *generation_fields,
         ("translator", translator.name),
         ("bt_chrf", ",".join(f"{lang}={q['chrf']}" for lang, q in quality.items() if "chrf" in q) or "n/a"),
         ("bt_checked", ",".join(f"{lang}={q['answers_passed']}/{q['answers_checked']}"
                                 for lang, q in quality.items() if "answers_checked" in q) or "n/a"),
         ("embed_bt", embed_translated.name), ("embed_orig", embed_original.name),
         ("classifier", signed_classifier_name() + "".join(f"+{name}" for name in (panel or {}).get("judges", []))),
         ("threshold", ",".join(f"{t.original.value:.3f}~{t.original.method.split(' ')[0].rstrip(':')}"
                                for t in thresholds.values()))])
    report = {
        "signature": signature,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_dir.name, "suite": suite_name, "langs": langs, "models": models,
        "config": {"samples": config.samples, "temperature": gen.temperature, "top_p": gen.top_p,
                   "max_new_tokens": gen.max_new_tokens, "seed": gen.seed,
                   "system_prompts": dict(config.system_prompts), "translator": config.translator},
        "translation_quality": quality,
        "thresholds": {model: t.to_dict() for model, t in thresholds.items()},
        "summary": summary, "by_category": by_category,
        "control_gaps": control_gaps(records, models, langs),
        "records": [r.to_dict() for r in records],
        "comparisons": [p.to_dict() for p in pairs],
        "flags": [f.to_dict() for f in flags],
        "input_problems": problems,
        "request_outcomes": request_outcomes,
        "judges": panel,
    }
    from xling.report.tables import build_tables

    report.update(build_tables(report))  # model comparisons, language gaps, reference tables
    write_report_json(report, run_dir)
    write_reports(report, run_dir)
    return report


def write_report_json(report: dict, run_dir: Path) -> Path:
    from xling.atomic import write_atomic

    # Atomic: a reader never sees half a report.
    return write_atomic(run_dir / "report.json", json.dumps(report, ensure_ascii=False, indent=1))


def _warn_if_another_run(config: CompareConfig, run_dir: Path) -> None:
    """An ``--out`` folder reused for other answers (another model, suite, sample count...): its
    reports will be this run's. Nothing is lost, since the store keys every answer by its request,
    but the reader should know why the old reports are gone."""
    import warnings

    try:
        earlier = CompareConfig.from_dict(json.loads((run_dir / "run.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, XlingError):
        return  # no earlier run, or one whose settings cannot be read (`xling report` says so)
    if earlier.digest() != config.digest():
        warnings.warn(f"{run_dir} held a run of {', '.join(earlier.models)} (suite {earlier.suite}, "
                      f"samples {earlier.samples}); its reports are replaced by this run's. Its answers stay in "
                      f"{run_dir / 'xling.sqlite'}: its own command finds them again", UserWarning, stacklevel=3)


def save_run_config(config: CompareConfig, run_dir: Path) -> Path:
    """run.json: the run's configuration, from which `xling report` rebuilds a damaged report."""
    from xling.atomic import write_atomic

    return write_atomic(run_dir / "run.json", json.dumps(config.to_dict(), ensure_ascii=False, indent=1))
