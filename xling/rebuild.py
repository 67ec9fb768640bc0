"""``xling report DIR``: read a run's report.json, or rebuild it from the run's own store.

Every answer and translation of a run is in its xling.sqlite and its configuration in run.json,
so a report.json that was truncated, edited into the wrong shape or deleted is rebuilt by running
the analysis again on the stored answers: no model generates anything.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from xling.errors import XlingError

# What the renderers cannot do without; everything else in a report is optional.
_SHAPE = {"langs": list, "models": list, "records": list, "summary": list}


def report_problem(path: Path) -> tuple[dict | None, str | None]:
    """The report at ``path`` and None, or None and what is wrong with it (file:line where known)."""
    if not path.exists():
        return None, f"{path}: not found"
    if path.is_dir():
        return None, f"{path}: is a directory, not a report"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, f"{path}: not UTF-8 text"
    except json.JSONDecodeError as err:
        return None, f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno}; truncated?)"
    if not isinstance(report, dict):
        return None, f"{path}: holds a JSON {type(report).__name__}, not a report object"
    for key, kind in _SHAPE.items():
        if not isinstance(report.get(key), kind):
            return None, f"{path}: '{key}' is {'missing' if key not in report else 'not a ' + kind.__name__}"
    return report, None


def load_or_rebuild(run_dir: Path, progress_factory=None) -> dict:
    """The run's report: report.json if it is sound, else rebuilt from xling.sqlite and run.json.

    Raises:
        XlingError: what is wrong, and how to rebuild it when this cannot.
    """
    import sys

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise XlingError(f"{run_dir} is not a run directory", "point `xling report` at a folder written by `xling compare`")
    report, problem = report_problem(run_dir / "report.json")
    if report is not None:
        return report
    store, saved = run_dir / "xling.sqlite", run_dir / "run.json"
    if not store.exists():
        raise XlingError(f"{problem}, and there is no xling.sqlite to rebuild it from",
                         "run the `xling compare` command that made this run again (with --out "
                         f"{run_dir}), or point `xling report` at a folder written by `xling compare`")
    if not saved.exists():
        raise XlingError(f"{problem}; the answers are in {store} but the run's settings (run.json) are not",
                         f"run the same `xling compare` command with --out {run_dir}: it reuses every stored "
                         "answer and rewrites the report")
    try:
        from xling.config import CompareConfig

        config = CompareConfig.from_dict(json.loads(saved.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:
        raise XlingError(f"{problem}, and {saved} cannot be read ({err})",
                         f"run the same `xling compare` command with --out {run_dir}: it reuses every stored answer") from None
    print(f"xling: warning: {problem}. Rebuilding it from {store} (no answers are generated).", file=sys.stderr)
    from contextlib import nullcontext

    from xling.pipeline import compare

    with (progress_factory() if progress_factory else nullcontext(None)) as progress:
        return compare(replace(config, out=run_dir), progress=progress, generate=False)
