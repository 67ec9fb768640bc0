"""Charts for the HTML report: rates by language, and non-answers by topic and language.

All label text is English and ASCII: CJK fonts are often missing where reports are built, and
matplotlib would draw empty boxes in their place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xling.report._common import category_name, lang_name, ordered_langs, ordered_models, summary_row

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
        ax.set_xticks(range(len(langs)))
        ax.set_xticklabels([_ascii(f"{lang_name(x)} ({x})") for x in langs])
        ax.set_ylim(0, 105)
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
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=len(legend),
                   fontsize=8, frameon=False)
    if drew:
        fig.savefig(path, dpi=120)
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
        for e in entries:
            if e.get("model") != model or e.get("lang") not in langs:
                continue
            value = _rate(e.get("non_substantive"))
            if value is not None:
                grid[categories.index(str(e.get("category", "?"))), langs.index(e["lang"])] = value[0] * 100
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for r in range(len(categories)):
            for c in range(len(langs)):
                value = grid[r, c]
                text = "-" if np.isnan(value) else f"{value:.0f}%"
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
    fig.savefig(path, dpi=120)
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
        "categories" (categories.png, non-answer rate per topic and language). A chart with
        no data to draw is left out.
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
    categories_path = out_dir / "categories.png"
    if _plot_categories(report, categories_path):
        written["categories"] = categories_path
    return written
