"""Rebuild the learned layer's weights from SpeechMap's judged training answers.

    python -m xling.detect.train            # writes xling/data/classifier/learned-v<N>.npz
    python -m xling.detect.train --check    # refits and says whether the shipped file is reproduced

The model is a multinomial logistic regression (scikit-learn, lbfgs run to a tight tolerance, so
that it stops at the one optimum whatever the last digits of its input) on standardised features
(xling/detect/features.py), with balanced class weights, then a temperature fitted on out-of-fold
logits (GroupKFold by model) so the probabilities are calibrated. The features include, per answer,
a summary of how a passage layer (the same kind of regression, over each window of the answer on its
own) scores its windows; the dense layers are fitted on summaries from passage layers that did not
see the answer's model (PASSAGE_SUMMARY, stacking). Chinese answers have their own
regression of the same form, fitted on the Chinese rows only (OWN_LAYER_LANGS); the shared one,
fitted on every row, serves English and carries to Japanese, which has no judged answers. Chinese
answers also get the n-gram expert's say (xling/detect/ngrams.py: TF-IDF character n-grams, its own logistic
regression): its log-probabilities, weighted by NGRAM_WEIGHT and shifted by NGRAM_OFFSET, are
added to the dense layer's tempered logits, and a second temperature, fitted on the out-of-fold
sums of all rows, calibrates the result.

Every training answer enters twice: whole, and cut to its first 200-600 characters (a seeded
length per answer, same label, weight CUT_WEIGHT). SpeechMap's answers are long (median 4,000 characters) while the
answers xling labels are often short (a 96-token cap, small models); trained on long answers
only, the layer read any short answer as a refusal or an evasion ("On May 4, 1970, Ohio National
Guard soldiers fired on students..." came out refusal 0.81); trained on cut copies at full weight,
it lost 0.04 macro-F1 on whole answers. Grouped cross-validation on whole and on cut answers chose
the weight (README, "Measured quality").
Only plain numpy arrays are written: inference (xling/detect/learned.py) needs no scikit-learn and
no pickle.

Data: ../shared/data/speechmap-judged-train (or $XLING_SHARED_DATA), from xlr8harder/speechmap-data,
Apache-2.0 (see NOTICE). The dev set is never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from xling.detect.degenerate import detect_degenerate
from xling.detect.features import CLOSING, FEATURE_VERSION, MIDDLE_CHUNKS, WINDOW, AnswerFeatures, FeatureExtractor
from xling.detect.judged import CLASSES, SOURCE, Judged, load_train
from xling.detect.learned import (MODEL_VERSION, PASSAGE_SUMMARY, combined_logits, in_lang, logits,
                                  ngram_expert, ngram_rows, passage_summary, probabilities, softmax)
from xling.detect.lexicon import LEXICON_VERSION
from xling.detect.ngrams import NGRAM_LANGS, NGRAM_SIZES, char_ngrams

# Chosen on grouped cross-validation of the training split (benchmarks/classify.py --cv), never on dev.
C = 0.01
SEED = 0
CV_FOLDS = 5
# The lengths, in characters, that training answers' cut copies are cut to (inclusive).
CUT_RANGE = (200, 600)
# The cut copies' sample weight. Grouped CV by model, mean macro-F1 of the default over whole /
# cut answers (en China, en other, zh): no copies 0.775 / 0.501, weight 1: 0.735 / 0.599, 0.5:
# 0.741 / 0.605, 0.2: 0.753 / 0.609 (best mean of the two).
CUT_WEIGHT = 0.2
# The n-gram expert (learned-v4). Chosen on the out-of-fold figures of the training split, grouped by
# model, never on dev (README, "Measured quality"): C 1 or 10, weight 0.5 or 1, min_df 3 or 10, a
# 20,000 n-gram cap or none, and a shift of the substantive logit of 0, -0.3 or -0.6.
NGRAM_C = 10.0
NGRAM_MIN_DF = 3
NGRAM_MAX_FEATURES = 20_000
NGRAM_WEIGHT = 0.5
# Added to the Chinese rows' logits (substantive, refusal, non_substantive): the expert raised
# agreement but called fewer evasions; this shift gives back some of the recall (zh evasion recall
# out of fold 0.67 -> 0.70) at the same agreement.
NGRAM_OFFSET = (-0.3, 0.0, 0.0)
# Languages whose answers get their own dense layer (learned-v5). Fitted on every row, the shared
# layer is mostly English (5,000 of 6,200 answers) and its weights are a compromise; out of fold by
# model, a Chinese-only layer took the default's zh macro-F1 from 0.78 to 0.82 on whole answers and
# from 0.60 to 0.68 on cut ones, agreement 0.93 -> 0.94, and the asymmetry flags' precision from 0.71
# to 0.76 (recall 0.71 -> 0.70). An English-only layer for English rows lowered the flags' precision
# (0.72 with both), so English keeps the shared one.
OWN_LAYER_LANGS = ("zh",)
# lbfgs stops when the largest gradient component is below this. The default (1e-4) stopped at
# points that differed with the inputs' last digits: a refit from a cache embedded on another
# machine was 1.1e-2 from the shipped probabilities.
TOL = 1e-8


def cut_copies(items: Sequence[Judged], seed: int = SEED) -> list[Judged]:
    """Each answer longer than its drawn length, cut to its first 200-600 characters (reasoning
    stripped), with the same label; one length is drawn per answer, in order, so the copies depend
    only on the items and the seed. Degenerate answers get no copy: their label rests on the loop
    or the script soup, which comes after pages of answer, so their openings would teach the layer
    that an ordinary opening is an evasion (out of fold by model, leaving those 53 copies out took
    cut English agreement from 0.86 / 0.92 to 0.87 / 0.94, en China / other)."""
    return list(_cut_copies(tuple(items), seed))


@lru_cache(maxsize=2)
def _cut_copies(items: tuple[Judged, ...], seed: int) -> tuple[Judged, ...]:
    # Cached: the degenerate check takes about a minute over the training split, and training and
    # the benchmarks ask for the same copies several times.
    rng = np.random.default_rng(seed)
    lengths = rng.integers(CUT_RANGE[0], CUT_RANGE[1] + 1, size=len(items))
    return tuple(replace(item, text=item.answer[:n]) for item, n in zip(items, lengths)
                 if len(item.answer) > n and not detect_degenerate(item.text))


def training_rows(items: Sequence[Judged]) -> list[Judged]:
    """What the layer is fitted on: every answer whole, then the cut copies."""
    return [*items, *cut_copies(items)]


def out_path(version: int = MODEL_VERSION) -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "classifier" / f"learned-v{version}.npz"


def data_digest(items: Sequence[Judged]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.model}\0{item.lang}\0{item.question}\0{item.text}\0{item.gold}\0".encode())
    return digest.hexdigest()


def labels(items: Sequence[Judged]) -> np.ndarray:
    return np.array([CLASSES.index(i.gold) for i in items])


def features(items: Sequence[Judged], extractor: FeatureExtractor | None = None) -> AnswerFeatures:
    extractor = extractor or FeatureExtractor()
    return extractor.features([i.text for i in items], [i.lang for i in items], [i.question for i in items])


def fit_linear(x: np.ndarray, y: np.ndarray, c: float = C, weight: np.ndarray | None = None,
               tol: float = TOL, start: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Standardise and fit the logistic regression (``weight``: per-row sample weights); return plain
    arrays (mean, scale, coef, intercept). ``start``: a layer fitted on much the same rows, whose
    weights lbfgs starts from (the cross-validation folds: about half the iterations). It stops a
    little elsewhere than a fit from zero: on one fold of the dense layer, 0.04 apart at most in the
    held-out rows' logits; the refit still reproduces the shipped file (PROBABILITY_TOLERANCE)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale < 1e-6, 1.0, scale)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=20_000, tol=tol, random_state=SEED,
                               warm_start=start is not None)
    if start is not None:
        model.coef_, model.intercept_ = restandardised(start, mean, scale)
    model.fit((x - mean) / scale, y, sample_weight=weight)
    return {"mean": mean.astype(np.float64), "scale": scale.astype(np.float64),
            "coef": model.coef_.astype(np.float64), "intercept": model.intercept_.astype(np.float64)}


def restandardised(layer: dict[str, np.ndarray], mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``layer``'s coef and intercept rewritten for inputs standardised with ``mean`` and ``scale``:
    the same function of the raw features."""
    raw = layer["coef"] / layer["scale"]
    return raw * scale, layer["intercept"] - (layer["mean"] - mean) @ raw.T


def fit_passages(inputs: AnswerFeatures, y: np.ndarray, weight: np.ndarray, rows: np.ndarray,
                 c: float = C, start: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The passage layer fitted on the windows of the answers ``rows``: each window carries its
    answer's label, and an answer's windows share its weight, so a long answer counts once."""
    keep = np.isin(inputs.owner, rows)
    owner = inputs.owner[keep]
    count = np.bincount(owner, minlength=len(inputs))
    return fit_linear(inputs.passages[keep], y[owner], c, weight[owner] / count[owner], start=start)


def out_of_fold_summary(inputs: AnswerFeatures, y: np.ndarray, groups: Sequence[str], weight: np.ndarray,
                        rows: np.ndarray | None = None, folds: int = CV_FOLDS, c: float = C,
                        start: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The passage summaries of the answers ``rows`` (default all), each from a passage layer fitted
    without the answer's group (GroupKFold within ``rows``); zero elsewhere. What the dense layers
    are fitted on, so that they weigh the summaries as they will be on answers the layer never saw.
    ``start``: the passage layer fitted on all of ``rows``, which each fold's fit starts from."""
    from sklearn.model_selection import GroupKFold

    rows = np.arange(len(inputs)) if rows is None else np.asarray(rows)
    out = np.zeros((len(inputs), len(PASSAGE_SUMMARY)))
    for train, test in GroupKFold(n_splits=folds).split(rows, groups=[groups[k] for k in rows]):
        layer = fit_passages(inputs, y, weight, rows[train], c, start)
        out[rows[test]] = passage_summary(layer, inputs)[rows[test]]
    return out


def out_of_fold_logits(inputs: AnswerFeatures, y: np.ndarray, groups: Sequence[str], langs: Sequence[str],
                       c: float = C, folds: int = CV_FOLDS, weight: np.ndarray | None = None) -> np.ndarray:
    """Each row's dense logits (``learned.dense_logits``: its language's own layer or the shared one)
    from layers that never saw its group (GroupKFold), passage layer included: within each fold the
    training rows' passage summaries are themselves out of fold (nested), as in :func:`train`."""
    from sklearn.model_selection import GroupKFold

    weight = np.ones(len(y)) if weight is None else weight
    own = {lang: in_lang(langs, lang) for lang in OWN_LAYER_LANGS}
    out = np.zeros((len(y), len(CLASSES)))
    # Each fold's layers start from the previous fold's: the folds share most of their rows.
    passage = shared = None
    owned: dict[str, dict[str, np.ndarray] | None] = dict.fromkeys(own)
    for train, test in GroupKFold(n_splits=folds).split(inputs.x, y, groups):
        passage = fit_passages(inputs, y, weight, train, c, passage)
        summary = out_of_fold_summary(inputs, y, groups, weight, train, folds, c, passage)
        summary[test] = passage_summary(passage, inputs)[test]
        x = np.hstack([inputs.x, summary])
        shared = fit_linear(x[train], y[train], c, weight[train], start=shared)
        out[test] = logits(shared, x[test])
        for lang, mask in own.items():
            fit_rows, scored = train[mask[train]], test[mask[test]]
            if len(scored):
                owned[lang] = fit_linear(x[fit_rows], y[fit_rows], c, weight[fit_rows], start=owned[lang])
                out[scored] = logits(owned[lang], x[scored])
    return out


def row_weights(items: Sequence[Judged]) -> np.ndarray:
    """1 for each whole answer, CUT_WEIGHT for each cut copy, in ``training_rows(items)`` order."""
    return np.r_[np.ones(len(items)), np.full(len(training_rows(items)) - len(items), CUT_WEIGHT)]


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the log-loss of softmax(z / T) on held-out logits."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        p = softmax(z / t)
        return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def fit_ngram(texts: Sequence[str], y: np.ndarray, weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fit the n-gram expert (TF-IDF of :func:`char_ngrams`, logistic regression); plain arrays."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    counts = CountVectorizer(analyzer=char_ngrams, min_df=NGRAM_MIN_DF)
    matrix = counts.fit_transform(texts)
    vocabulary = counts.get_feature_names_out()
    keep = np.sort(most_frequent(np.asarray(matrix.sum(axis=0)).ravel(), vocabulary, NGRAM_MAX_FEATURES))
    tfidf = TfidfTransformer(sublinear_tf=True)
    matrix = tfidf.fit_transform(matrix[:, keep])
    model = LogisticRegression(C=NGRAM_C, class_weight="balanced", max_iter=20_000, tol=1e-6, random_state=SEED)
    model.fit(matrix, y, sample_weight=weight)
    return {"ngram_vocabulary": np.array([str(g) for g in vocabulary[keep]]), "ngram_idf": tfidf.idf_.astype(np.float64),
            "ngram_coef": model.coef_.astype(np.float64), "ngram_intercept": model.intercept_.astype(np.float64)}


def most_frequent(totals: np.ndarray, names: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` largest ``totals``, ties broken by name. scikit-learn's ``max_features``
    breaks them with numpy's unstable argsort, whose order differs between CPUs (AVX-512 or AVX2), so
    the shipped weights would not be reproduced on every machine."""
    order = np.lexsort((names, -totals))  # the last key sorts first
    return order[:limit]


def out_of_fold_ngram(texts: Sequence[str], y: np.ndarray, groups: Sequence[str], scored: np.ndarray,
                      folds: int = CV_FOLDS, weight: np.ndarray | None = None) -> np.ndarray:
    """The n-gram expert's log-probabilities of the ``scored`` rows, each from an expert fitted
    without the row's group (the same GroupKFold folds as :func:`out_of_fold_logits`); zero elsewhere."""
    from sklearn.model_selection import GroupKFold

    out = np.zeros((len(y), len(CLASSES)))
    for train, test in GroupKFold(n_splits=folds).split(np.zeros(len(y)), y, groups):
        train, test = train[scored[train]], test[scored[test]]
        expert = ngram_expert(fit_ngram([texts[k] for k in train], y[train],
                                        None if weight is None else weight[train]))
        out[test] = expert.log_probabilities([texts[k] for k in test])
    return out


def train(items: Sequence[Judged], inputs: AnswerFeatures, c: float = C) -> dict[str, np.ndarray]:
    """Fit on ``training_rows(items)`` (``inputs``: their features, in that order) and calibrate on
    their out-of-fold logits (grouped by model, so an answer and its cut copy are always on one side)."""
    rows = training_rows(items)
    if len(rows) != len(inputs):
        raise ValueError(f"{len(inputs)} feature rows for {len(rows)} training rows. "
                         f"Fix: features(training_rows(items))")
    y, weight, groups, langs = labels(rows), row_weights(items), [i.model for i in rows], [i.lang for i in rows]
    texts, scored = [i.text for i in rows], ngram_rows(langs)
    passage = fit_passages(inputs, y, weight, np.arange(len(rows)), c)
    x = np.hstack([inputs.x, out_of_fold_summary(inputs, y, groups, weight, c=c, start=passage)])
    params = fit_linear(x, y, c, weight)
    params.update({f"passage_{key}": value for key, value in passage.items()})
    for lang in OWN_LAYER_LANGS:
        own = in_lang(langs, lang)
        params.update({f"{lang}_{key}": value for key, value in fit_linear(x[own], y[own], c, weight[own]).items()})
    params["own_langs"] = np.array(OWN_LAYER_LANGS)
    z = out_of_fold_logits(inputs, y, groups, langs, c, weight=weight)
    params["temperature"] = np.array(fit_temperature(z, y))
    params.update(fit_ngram([t for t, s in zip(texts, scored) if s], y[scored], weight[scored]))
    params["ngram_weight"] = np.array(NGRAM_WEIGHT)
    params["ngram_offset"] = np.array(NGRAM_OFFSET, dtype=np.float64)
    params["ngram_langs"] = np.array(NGRAM_LANGS)
    logp = out_of_fold_ngram(texts, y, groups, scored, weight=weight)
    params["combined_temperature"] = np.array(fit_temperature(combined_logits(params, z, logp, scored), y))
    params["classes"] = np.array(CLASSES)
    params["meta"] = np.array([f"version=learned-v{MODEL_VERSION}", f"features={FEATURE_VERSION}",
                               f"window={WINDOW}", f"closing={CLOSING}", f"middle={MIDDLE_CHUNKS}", f"lexicon={LEXICON_VERSION}", f"C={c}",
                               f"own_layers={','.join(OWN_LAYER_LANGS)}",
                               f"passages={','.join(PASSAGE_SUMMARY)}",
                               f"cut={CUT_RANGE[0]}-{CUT_RANGE[1]},weight={CUT_WEIGHT},seed={SEED}",
                               f"ngram=char{NGRAM_SIZES[0]}-{NGRAM_SIZES[-1]},min_df={NGRAM_MIN_DF},"
                               f"max={NGRAM_MAX_FEATURES},C={NGRAM_C},weight={NGRAM_WEIGHT},offset={NGRAM_OFFSET}",
                               f"n_train={len(items)}",
                               f"n_rows={len(rows)}", f"data_sha256={data_digest(items)}", f"source={SOURCE}"])
    return params


def save(params: dict[str, np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **params)
    tmp.replace(path)


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], tol: float = 1e-6) -> list[str]:
    """The arrays that differ between two weight sets (empty: the same)."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            diffs.append(key)
        elif a[key].dtype.kind in "fc":
            if a[key].shape != b[key].shape or not np.allclose(a[key], b[key], atol=tol, rtol=1e-5):
                diffs.append(key)
        elif not np.array_equal(a[key], b[key]):
            diffs.append(key)
    return diffs


# How far a refit's probabilities on the training answers may be from the shipped file's. lbfgs is
# deterministic for given features, but the features' last digits differ between machines (BLAS
# order, embedding batches), and at lbfgs's default tolerance that moved where it stopped: a 1e-6
# relative perturbation of the features moved probabilities by 1.0e-2, at TOL by 1.4e-5
# (benchmarks/train_stability.py). 0.01 is far below what moves a label past the gates (0.5, 0.6)
# except for rows sitting on them.
PROBABILITY_TOLERANCE = 1e-2


def probability_gap(a: dict[str, np.ndarray], b: dict[str, np.ndarray], inputs: AnswerFeatures,
                    texts: Sequence[str], langs: Sequence[str]) -> float:
    """The largest difference between two weight sets' calibrated probabilities on the answers
    ``texts`` (features ``inputs``)."""
    if not len(inputs):
        return 0.0
    return float(np.abs(probabilities(a, inputs, texts, langs) - probabilities(b, inputs, texts, langs)).max())


def reproduces(params: dict[str, np.ndarray], shipped: dict[str, np.ndarray], inputs: AnswerFeatures,
               texts: Sequence[str], langs: Sequence[str]) -> tuple[bool, str]:
    """Whether a refit reproduces the shipped weights: the same classes, features, training data
    (meta) and n-grams, and probabilities on the training answers within PROBABILITY_TOLERANCE."""
    for key in ("classes", "meta", "ngram_vocabulary"):
        if key not in shipped or not np.array_equal(params[key], shipped[key]):
            return False, f"{key} differs"
    if params["coef"].shape != shipped["coef"].shape:
        return False, f"coef shape {params['coef'].shape} vs {shipped['coef'].shape}"
    gap = probability_gap(params, shipped, inputs, texts, langs)
    verdict = "within" if gap <= PROBABILITY_TOLERANCE else "over"
    return gap <= PROBABILITY_TOLERANCE, (f"largest probability difference on the {len(inputs)} training answers: "
                                          f"{gap:.2e} ({verdict} {PROBABILITY_TOLERANCE:g})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="refit and compare with the shipped file")
    parser.add_argument("--out", type=Path, default=out_path())
    args = parser.parse_args(argv)
    try:
        items = load_train()
    except FileNotFoundError as err:
        print(f"{err.filename}: not found. Fix: set XLING_SHARED_DATA to the shared data folder", file=sys.stderr)
        return 2
    rows = training_rows(items)
    inputs = features(rows)
    params = train(items, inputs)
    if args.check:
        with np.load(args.out) as shipped:
            ok, why = reproduces(params, dict(shipped), inputs, [i.text for i in rows], [i.lang for i in rows])
        print(("reproduced: " if ok else "not reproduced: ") + why)
        return 0 if ok else 1
    save(params, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, T={float(params['temperature']):.3f}, "
          f"combined T={float(params['combined_temperature']):.3f}, {len(params['ngram_vocabulary'])} n-grams)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
