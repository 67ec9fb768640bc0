"""report.json's tables as CSV and Parquet files, one row per record, flag, pair or table row, for
pandas (``pd.read_parquet("run/records.parquet")``). The columns are listed in the README
("Exports"); nested values (a flag's languages, a record's probabilities) become JSON strings or
;-joined lists so that every column is flat."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RECORD_COLUMNS = ("model", "prompt_id", "lang", "sample", "category", "variant", "base", "prompt", "text",
                  "reasoning", "back_translation", "answer_lang", "label", "confidence", "layer", "evidence",
                  "official_terms", "truncated", "outcome", "outcome_cause", "finish_reason",
                  "key_facts_missing", "probabilities", "key")
FLAG_COLUMNS = ("model", "prompt_id", "category", "type", "langs", "level", "severity", "summary", "control_of",
                "scores")
PAIR_COLUMNS = ("model", "prompt_id", "langs", "sim_translated", "sim_original", "chrf")


def _flat(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _rows(entries: Sequence[Mapping[str, Any]], columns: Sequence[str] | None,
          extra: Mapping[str, str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    entries = [e for e in entries if isinstance(e, Mapping)]
    if columns is None:  # the tables module's rows are flat already: keep their own keys
        columns = list(dict.fromkeys(k for e in entries for k in e))
    rows = []
    for entry in entries:
        source = {**entry, **{name: (entry.get("evidence") or {}).get(key) for name, key in (extra or {}).items()}}
        rows.append({c: _flat(source.get(c)) for c in columns})
    return list(columns), rows


def _write(name: str, columns: list[str], rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    csv_path, parquet_path = out_dir / f"{name}.csv", out_dir / f"{name}.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False, engine="pyarrow")
    return [csv_path, parquet_path]


def write_exports(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write records, flags, comparisons (answer pairs) and the comparison tables as CSV and
    Parquet into out_dir. Returns the paths written."""
    out_dir = Path(out_dir)
    tables = {
        "records": _rows(report.get("records") or [], RECORD_COLUMNS),
        "flags": _rows(report.get("flags") or [], FLAG_COLUMNS, {"scores": "scores"}),
        "comparisons": _rows(report.get("comparisons") or [], PAIR_COLUMNS),
        "model_rates": _rows(report.get("model_rates") or [], None),
        "model_comparisons": _rows(report.get("model_comparisons") or [], None),
        "language_gaps": _rows(report.get("language_gaps") or [], None),
        "reference_tables": _rows(report.get("reference_tables") or [], None),
    }
    written = []
    for name, (columns, rows) in tables.items():
        if columns:
            written += _write(name, columns, rows, out_dir)
    return written
