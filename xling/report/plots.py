"""Charts for the HTML report: rates by language, and non-answers by topic and language.

All label text is English and ASCII: CJK fonts are often missing where reports are built, and
matplotlib would draw empty boxes in their place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xling.report._common import (
    category_name,
    lang_name,
    measure_name,
    ordered_langs,
    ordered_models,
    rate_rows,
    short_model,
    summary_row,
)

# The behaviours worth a chart: what a reader wants to compare across languages. "Answered"
# is the complement of the first three and would only repeat them.
_PLOTTED_RATES: tuple[tuple[str, str, str], ...] = (
    ("refusal", "Refused", "#b3261e"),
    ("evasion", "Evaded", "#e08a00"),
    ("official_line", "Official line", "#6b3fa0"),
    ("wrong_language", "Wrong language", "#1a5fb4"),
)


def _rate(entry: Any) -> tuple[float, float, float] | None:
    """(rate, lower error, upper error) of a rate entry, or None when it has no rate."""
    if not isinstance(entry, Mapping):
        return None
    rate = entry.get("rate")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        return None
    ci = entry.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        # max(0, ...) because a rounded interval can sit a hair inside the rate.
        return float(rate), max(0.0, rate - ci[0]), max(0.0, ci[1] - rate)
    return float(rate), 0.0, 0.0


def _ascii(text: str) -> str:
    """`text` with anything outside ASCII replaced, so no glyph is missing from the font."""
    return text.encode("ascii", "replace").decode("ascii")


def _save(fig: Any, report: Mapping[str, Any], path: Path, legend: dict[str, Any] | None = None) -> None:
    """Save with the legend (label -> handle) and the run's signature in a band under the chart:
    a chart copied out of the report still says which run it shows."""
    import textwrap

    lines = textwrap.wrap(_ascii("signature: " + str(report.get("signature", "unknown"))), 170,
                          break_on_hyphens=False) or [""]
    inches = fig.get_figheight()
    band = min(0.3, (0.12 * len(lines) + 0.05) / inches)
    legend_band = 0.35 / inches if legend else 0.0
    fig.get_layout_engine().set(rect=(0, band + legend_band, 1, 1 - band - legend_band))
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", bbox_to_anchor=(0.5, band),
                   ncol=min(6, len(legend)), fontsize=8, frameon=False)
    fig.text(0.01, band - 0.01, "\n".join(lines), fontsize=5.5, va="top", ha="left", color="#555555",
             family="monospace")
    fig.savefig(path, dpi=120)


def _n_label(report: Mapping[str, Any], model: str, lang: str) -> str:
    n = (summary_row(report, model, lang) or {}).get("n")
    return f"{lang_name(lang)} ({lang})" + (f"\nn={n}" if isinstance(n, int) else "")


def _plot_rates(report: Mapping[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt

    models = [m for m in ordered_models(report) if any(summary_row(report, m, x) for x in ordered_langs(report))]
    langs = ordered_langs(report)
    if not models or not langs:
        return False
    width = 0.8 / len(_PLOTTED_RATES)
    fig, axes = plt.subplots(
        len(models), 1, figsize=(max(6.5, 1.9 * len(langs) + 2.5), 3.4 * len(models) + 0.8),
        squeeze=False, layout="constrained",
    )
    drew = False
    for ax, model in zip(axes[:, 0], models):
        for i, (key, label, colour) in enumerate(_PLOTTED_RATES):
            xs, heights, lower, upper = [], [], [], []
            for j, lang in enumerate(langs):
                value = _rate(((summary_row(report, model, lang) or {}).get("rates") or {}).get(key))
                if value is None:
                    continue
                xs.append(j + (i - (len(_PLOTTED_RATES) - 1) / 2) * width)
                heights.append(value[0] * 100)
                lower.append(value[1] * 100)
                upper.append(value[2] * 100)
            if xs:
                drew = True
                ax.bar(xs, heights, width, label=label, color=colour, yerr=[lower, upper], capsize=3,
                       error_kw={"elinewidth": 1, "ecolor": "#333333"})
                for x, height, up in zip(xs, heights, upper):  # the value on every bar, 0% included
                    ax.text(x, min(height + up, 100) + 1.5, f"{height:.0f}%", ha="center", va="bottom", fontsize=6)
        ax.set_xticks(range(len(langs)))
        ax.set_xticklabels([_ascii(_n_label(report, model, x)) for x in langs])
        ax.set_ylim(0, 110)
        ax.set_ylabel("% of answers (line: 95% range)", fontsize=9)
        ax.set_title(_ascii(model), fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle("How often the model refuses, evades or repeats the official line", fontsize=11)
    # One legend below all panels, outside them, so that no bar is hidden behind it.
    # Gathered from every panel: a model may have no data for a rate another model has.
    legend: dict[str, Any] = {}
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if drew:
        _save(fig, report, path, legend)
    plt.close(fig)
    return drew


def _plot_categories(report: Mapping[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt
    import numpy as np

    entries = [e for e in report.get("by_category") or [] if isinstance(e, Mapping)]
    models = [m for m in ordered_models(report) if any(e.get("model") == m for e in entries)]
    langs = ordered_langs(report)
    if not models or not langs:
        return False
    categories = list(dict.fromkeys(str(e.get("category", "?")) for e in entries))
    fig, axes = plt.subplots(
        1, len(models), figsize=(2.6 + 1.6 * len(langs) * len(models) + 1.2, 0.5 * len(categories) + 1.8),
        squeeze=False, sharey=True, layout="constrained",
    )
    cmap = plt.get_cmap("Reds").with_extremes(bad="#eeeeee")  # grey: cells without answers
    image = None
    for i, (ax, model) in enumerate(zip(axes[0], models)):
        grid = np.full((len(categories), len(langs)), np.nan)
        counts = np.zeros((len(categories), len(langs)), dtype=int)
        for e in entries:
            if e.get("model") != model or e.get("lang") not in langs:
                continue
            value = _rate(e.get("non_substantive"))
            if value is not None:
                cell = categories.index(str(e.get("category", "?"))), langs.index(e["lang"])
                grid[cell] = value[0] * 100
                counts[cell] = int(e.get("n") or 0)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for r in range(len(categories)):
            for c in range(len(langs)):
                value = grid[r, c]
                text = "-" if np.isnan(value) else f"{value:.0f}% n={counts[r, c]}"
                colour = "white" if not np.isnan(value) and value > 60 else "black"
                ax.text(c, r, text, ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(len(langs)))
        ax.set_xticklabels([_ascii(f"{lang_name(x)} ({x})") for x in langs], fontsize=8)
        if i == 0:  # the panels share their rows; label them once
            ax.set_yticks(range(len(categories)))
            ax.set_yticklabels([_ascii(category_name(c)) for c in categories], fontsize=8)
        ax.set_title(_ascii(model), fontsize=9, loc="left")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="% not answered", shrink=0.8)
    fig.suptitle("Share of answers that did not answer the question, by topic", fontsize=11)
    _save(fig, report, path)
    plt.close(fig)
    return True


# Rates worth setting models side by side; answered is the complement of the others.
_MODEL_MEASURES = ("refusal", "evasion", "official_line", "degenerate", "wrong_language", "blocked")


def _plot_models(report: Mapping[str, Any], path: Path) -> bool:
    """One panel per measure any model shows: each model's rate per language, clustered 95%
    ranges, the rate and n written on every bar (so a zero-height bar still reads "0% n=12")."""
    import matplotlib.pyplot as plt

    models, langs = ordered_models(report), ordered_langs(report)
    rows = [r for lang in langs for r in rate_rows(report, lang)]
    measures = [m for m in _MODEL_MEASURES if any(r.get("measure") == m and (r.get("rate") or 0) > 0 for r in rows)]
    if len(models) < 2 or not measures:
        return False
    fig, axes = plt.subplots(len(measures), 1, figsize=(max(6.5, 2.2 * len(langs) * max(1, len(models) / 2) + 2),
                                                      2.9 * len(measures) + 0.8), squeeze=False, layout="constrained")
    width = 0.8 / len(models)
    colours = plt.get_cmap("tab10")
    for ax, measure in zip(axes[:, 0], measures):
        for i, model in enumerate(models):
            for j, lang in enumerate(langs):
                row = next((r for r in rows if r.get("model") == model and r.get("lang") == lang
                            and r.get("measure") == measure), None)
                if row is None or row.get("rate") is None:
                    continue
                rate = row["rate"] * 100
                low, high = (row.get("ci_low") or 0) * 100, (row.get("ci_high") or 0) * 100
                x = j + (i - (len(models) - 1) / 2) * width
                ax.bar(x, rate, width, color=colours(i % 10), label=_ascii(short_model(report, model)) if j == 0 else None,
                       yerr=[[max(0.0, rate - low)], [max(0.0, high - rate)]], capsize=3,
                       error_kw={"elinewidth": 1, "ecolor": "#333333"})
                ax.text(x, min(high, 100) + 2, f"{rate:.0f}%\nn={row.get('n')}", ha="center", va="bottom", fontsize=6.5)
        ax.set_xticks(range(len(langs)))
        ax.set_xticklabels([_ascii(f"{lang_name(x)} ({x})") for x in langs])
        ax.set_ylim(0, 125)
        ax.set_ylabel("% (line: 95% range)", fontsize=8)
        ax.set_title(_ascii(measure_name(measure)), fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle("Models side by side (ranges clustered by question)", fontsize=11)
    _save(fig, report, path, dict(zip(labels, handles)))
    plt.close(fig)
    return True


def _plot_similarity(report: Mapping[str, Any], path: Path) -> bool:
    """Per model: the cross-language similarity of answer pairs, and the threshold under which a
    pair counts as saying different things."""
    import matplotlib.pyplot as plt

    pairs = [p for p in report.get("comparisons") or [] if isinstance(p, Mapping)
             and isinstance(p.get("sim_translated"), (int, float))]
    models = [m for m in ordered_models(report) if any(p.get("model") == m for p in pairs)]
    if not models:
        return False
    fig, axes = plt.subplots(len(models), 1, figsize=(7, 2.4 * len(models) + 0.9), squeeze=False, layout="constrained")
    for ax, model in zip(axes[:, 0], models):
        values = [p["sim_translated"] for p in pairs if p.get("model") == model]
        ax.hist(values, bins=20, range=(min(0.0, min(values)), 1.0), color="#1a5fb4", alpha=0.8)
        threshold = ((report.get("thresholds") or {}).get(model) or {}).get("semantic")
        if isinstance(threshold, (int, float)):
            ax.axvline(threshold, color="#b3261e", linestyle="--", label=f"threshold {threshold:.2f}")
            below = sum(v < threshold for v in values)
            ax.legend(fontsize=7, title=f"{below} of {len(values)} below", title_fontsize=7)
        ax.set_title(_ascii(f"{short_model(report, model)} (n={len(values)} question x language pairs)"),
                     fontsize=9, loc="left")
        ax.set_xlabel("similarity of back-translated answers (1 = same meaning)", fontsize=8)
        ax.set_ylabel("pairs", fontsize=8)
    fig.suptitle("Cross-language similarity against the calibrated threshold", fontsize=11)
    _save(fig, report, path)
    plt.close(fig)
    return True


def render_plots(report: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Draw the report's charts as PNG files.

    Args:
        report: The dict the pipeline writes as report.json. Optional keys may be absent.
        out_dir: Folder to write into; created if missing.

    Returns:
        Chart name -> path written: "rates" (rates.png, refusal / evasion / official-line /
        wrong-language rates per language with 95% ranges, one panel per model) and
        "categories" (categories.png, non-answer rate per topic and language), "models"
        (models.png, several models side by side with clustered ranges) and "similarity"
        (similarity.png, cross-language similarity against the threshold). Each carries the
        run's signature and its n. A chart with no data to draw is left out.
    """
    import matplotlib

    # Agg draws to files without a display, so reports build on servers and in CI.
    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    rates_path = out_dir / "rates.png"
    if _plot_rates(report, rates_path):
        written["rates"] = rates_path
    for name, draw in (("categories", _plot_categories), ("models", _plot_models), ("similarity", _plot_similarity)):
        chart = out_dir / f"{name}.png"
        if draw(report, chart):
            written[name] = chart
    return written
