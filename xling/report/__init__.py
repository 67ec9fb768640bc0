"""Turn a run's report.json into what people read: terminal summary, Markdown, HTML, charts.

The renderers take the report as a plain dict and treat every key other than the basics as
optional, so a report from an interrupted or empty run still renders.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xling.atomic import move_atomic, write_atomic
from xling.report.exports import write_exports
from xling.report.html import render_html
from xling.report.markdown import render_markdown
from xling.report.plots import render_plots
from xling.report.tables import with_tables
from xling.report.terminal import print_summary

__all__ = ["print_summary", "render_html", "render_markdown", "render_plots", "write_reports"]

# Language codes become file names; anything else ("../x") is a bug upstream, not a name.
_LANG_CODE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def write_reports(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write the readable reports of a run next to its report.json.

    Writes report.<lang>.md for each language in report["langs"], the charts (PNG, when there is
    data to draw), the exports (records, flags, comparisons and the comparison tables as CSV and
    Parquet) and index.html, which embeds the charts and so stands alone. report.json itself is
    the pipeline's to write; the comparison tables are computed from its records when an older
    report lacks them.

    Args:
        report: The dict the pipeline writes as report.json.
        out_dir: The run directory; created if missing.

    Returns:
        The paths written, Markdown files first, index.html last.

    Raises:
        ValueError: If a language code in report["langs"] is not a plain code such as "zh".
    """
    out_dir = Path(out_dir)
    langs = [str(x) for x in report.get("langs") or []]
    bad = [x for x in langs if not _LANG_CODE.match(x)]
    if bad:
        raise ValueError(
            f"report['langs'] holds {bad!r}, which are not language codes such as 'zh'; "
            "fix the run configuration that produced this report"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    report = with_tables(report)
    # Every file is written whole or not at all (temp file, then rename): a full disk or a kill
    # leaves the previous report in place, never half of a new one.
    written: list[Path] = []
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".charts-"))
    try:
        charts = {name: move_atomic(p, out_dir / p.name) for name, p in render_plots(report, staging).items()}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for lang in langs:
        written.append(write_atomic(out_dir / f"report.{lang}.md",
                                    render_markdown(report, lang, {name: p.name for name, p in charts.items()})))
    written += list(charts.values())
    written += write_exports(report, out_dir)
    # The charts go inside the page as data: URIs, so the one file can be mailed or opened offline.
    written.append(write_atomic(out_dir / "index.html",
                                render_html(report, {name: data_uri(p) for name, p in charts.items()})))
    return written
