"""The reproducibility signature on every output, in the manner of sacrebleu's
``nrefs:1|case:mixed|tok:13a|version:2.0.0``: explicit fields, each component naming itself and
its version, the xling version last."""

from __future__ import annotations

import hashlib

from xling import __version__


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def build_signature(fields: list[tuple[str, str]]) -> str:
    """Join explicit (name, value) fields; ``version`` is appended last."""
    return "|".join(f"{name}:{value}" for name, value in fields + [("version", __version__)])
