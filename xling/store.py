"""The run's SQLite database: every finished answer and translation, committed as it is made.

An answer's key hashes the model identity, the generation config, the system prompt, the
question's id, language and text, and the sample index, so a resumed run skips exactly what is
done, and a changed configuration or question never reuses an old answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    lang TEXT NOT NULL,
    sample INTEGER NOT NULL,
    raw_text TEXT NOT NULL,
    truncated INTEGER NOT NULL,
    n_tokens INTEGER,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    outcome TEXT NOT NULL DEFAULT 'answer',
    outcome_cause TEXT NOT NULL DEFAULT '',
    finish_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    verdict TEXT NOT NULL
);
-- The analysis of stored answers (language, labels, embeddings), keyed by a hash of the stage's
-- name with its version and the input, so a re-run of a finished run computes nothing again and
-- a changed classifier or embedder (a new name) computes afresh.
CREATE TABLE IF NOT EXISTS analysis (
    key TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS translations (
    key TEXT PRIMARY KEY,
    translator TEXT NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    translation TEXT NOT NULL
);
"""

# Columns added to ``generations`` after its first release: a database written before them gets
# them on open, every old row an answer (which is all an old run could store).
_ADDED_COLUMNS = (("outcome", "TEXT NOT NULL DEFAULT 'answer'"), ("outcome_cause", "TEXT NOT NULL DEFAULT ''"),
                  ("finish_reason", "TEXT NOT NULL DEFAULT ''"))
# SQLite's default 4 KiB page holds one embedding row (a 512-float vector is 2 KiB, and two rows
# do not fit), so half of a large run's database was empty space: the 25-model replay of the
# training split (180,000 sentence vectors) took 804 MB at 4 KiB and 440 MB at 16 KiB, the same
# rows (8 KiB: 510 MB, 64 KiB: 412 MB); a default run's store, copied the same way, 1.2 MB -> 0.9 MB.
PAGE_SIZE = 16384
_GENERATION_COLUMNS = "key, model, prompt_id, lang, sample, raw_text, truncated, n_tokens, outcome, outcome_cause, finish_reason"


def record_key(model_identity: str, config_digest: str, system_prompt: str, prompt_id: str,
               lang: str, prompt_text: str, sample: int) -> str:
    """The identity of one answer; see the module docstring for why each part is in it."""
    payload = json.dumps([model_identity, config_digest, system_prompt, prompt_id, lang, prompt_text, sample],
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def translation_key(translator: str, source: str, text: str) -> str:
    return hashlib.sha256(json.dumps([translator, source, text], ensure_ascii=False).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class StoredGeneration:
    key: str
    model: str
    prompt_id: str
    lang: str
    sample: int
    raw_text: str
    truncated: bool
    n_tokens: int | None
    outcome: str = "answer"  # an xling.schema.Outcome value
    outcome_cause: str = ""
    finish_reason: str = ""


class Store:
    """One run's database. Each ``put_*`` call is its own transaction, so a kill loses at most
    the batch in flight."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        # Set before the file exists (it cannot change later in WAL mode); an older store keeps its own.
        self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(generations)")}
        with self._db:
            for name, definition in _ADDED_COLUMNS:
                if name not in present:
                    self._db.execute(f"ALTER TABLE generations ADD COLUMN {name} {definition}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- answers --------------------------------------------------------------------------
    def done_keys(self, retry_errors: bool = False) -> set[str]:
        """Keys that need no generating; with ``retry_errors``, blocked and failed ones do."""
        where = " WHERE outcome = 'answer'" if retry_errors else ""
        return {row[0] for row in self._db.execute(f"SELECT key FROM generations{where}")}

    def put_generations(self, rows: Iterable[StoredGeneration]) -> None:
        """Store answers. An answer is never overwritten; a blocked or failed outcome is, by the
        result of retrying it (``--retry-errors``)."""
        with self._db:
            self._db.executemany(
                f"INSERT INTO generations ({_GENERATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET raw_text = excluded.raw_text, truncated = excluded.truncated,"
                " n_tokens = excluded.n_tokens, outcome = excluded.outcome, outcome_cause = excluded.outcome_cause,"
                " finish_reason = excluded.finish_reason, created = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
                " WHERE generations.outcome != 'answer'",
                [(r.key, r.model, r.prompt_id, r.lang, r.sample, r.raw_text, int(r.truncated), r.n_tokens,
                  r.outcome, r.outcome_cause, r.finish_reason) for r in rows])

    def get_generations(self, keys: Sequence[str]) -> dict[str, StoredGeneration]:
        found: dict[str, StoredGeneration] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                    f"SELECT {_GENERATION_COLUMNS} FROM generations WHERE key IN ({marks})", chunk):
                found[row[0]] = StoredGeneration(*row[:6], bool(row[6]), *row[7:])
        return found

    def count_generations(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    # -- translations ---------------------------------------------------------------------
    def get_translations(self, translator: str, source: str, texts: Sequence[str]) -> dict[str, str]:
        """Cached translations of ``texts``, by text."""
        found = {}
        for text in set(texts):
            row = self._db.execute("SELECT translation FROM translations WHERE key = ?",
                                   (translation_key(translator, source, text),)).fetchone()
            if row:
                found[text] = row[0]
        return found

    def put_translations(self, translator: str, source: str, pairs: Iterable[tuple[str, str]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO translations (key, translator, source, text, translation) VALUES (?, ?, ?, ?, ?)",
                [(translation_key(translator, source, text), translator, source, text, translation)
                 for text, translation in pairs])

    # -- judges' verdicts -----------------------------------------------------------------
    def get_judgements(self, judge: str, keys: Sequence[str]) -> dict[str, dict]:
        """Cached verdicts of one judge, by item key (JSON dicts: label, confidence, evidence)."""
        found = {}
        for key in keys:
            row = self._db.execute("SELECT verdict FROM judgements WHERE key = ?",
                                   (translation_key(judge, "judge", key),)).fetchone()
            if row:
                found[key] = json.loads(row[0])
        return found

    def put_judgements(self, judge: str, verdicts: Iterable[tuple[str, dict]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO judgements (key, judge, verdict) VALUES (?, ?, ?)",
                                 [(translation_key(judge, "judge", key), judge, json.dumps(v, ensure_ascii=False))
                                  for key, v in verdicts])

    # -- analysis cache -------------------------------------------------------------------
    def get_analysis(self, stage: str, inputs: Sequence[str]) -> dict[str, bytes]:
        """Cached results of ``stage`` (a name carrying its version), by input."""
        keys = {translation_key(stage, "analysis", text): text for text in set(inputs)}
        found: dict[str, bytes] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM analysis WHERE key IN ({marks})", chunk):
                found[keys[key]] = value
        return found

    def put_analysis(self, stage: str, results: Iterable[tuple[str, bytes | str]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO analysis (key, stage, value) VALUES (?, ?, ?)",
                                 [(translation_key(stage, "analysis", text), stage, value) for text, value in results])
