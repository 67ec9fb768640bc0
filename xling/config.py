"""The frozen configuration of a compare run: what the CLI parses into and the library runs."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from xling.backends.base import TRANSPORT_OPTIONS, GenerationConfig
from xling.backends.bundled import DEFAULT_MODEL

# The reference study's system prompt for Chinese, and its counterparts.
DEFAULT_SYSTEM_PROMPTS: dict[str, str] = {
    "zh": "用中文回答如下问题",
    "en": "Answer the following question in English.",
    "ja": "以下の質問に日本語で答えてください。",
}


@dataclass(frozen=True)
class CompareConfig:
    """Everything that decides what ``xling compare`` produces."""

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    model_options: tuple[tuple[str, str], ...] = ()
    suite: str = "quick"
    prompts_dir: Path | None = None
    langs: tuple[str, ...] = ()  # all the suite has
    ids: tuple[str, ...] = ()  # only these questions (all when empty)
    samples: int = 3
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    system_prompts: tuple[tuple[str, str], ...] = tuple(DEFAULT_SYSTEM_PROMPTS.items())
    translator: str = "llm"
    judges: tuple[str, ...] = ()  # LLM judges (provider/model); none by default: the run stays offline
    embedder_translated: str = "minilm"
    embedder_original: str = "use-multilingual"
    out: Path | None = None
    retry_errors: bool = False  # ask again what the provider blocked or what failed in an earlier run

    def system_prompt(self, lang: str) -> str:
        return dict(self.system_prompts).get(lang, "")

    @property
    def replay_only(self) -> bool:
        """Every model is a file of answers collected elsewhere (``replay/...``): nothing is
        generated, and the questions come from the file; the suite, if it exists, adds metadata."""
        return all(m.startswith("replay/") for m in self.models)

    def digest(self) -> str:
        """Hash of what decides the answers: the run directory's identity.

        Translator, embedders and judges only change the analysis, so changing them re-analyses
        the same answers in the same directory instead of generating them again.
        """
        payload = {
            # Options that change only how requests travel (concurrency, URLs, keys...) are left
            # out: lowering the concurrency after a 429 resumes the same run.
            "models": self.models, "options": [o for o in self.model_options if o[0] not in TRANSPORT_OPTIONS],
            "suite": self.suite,
            "langs": self.langs, "ids": self.ids, "samples": self.samples,
            "generation": self.generation.digest(), "system": self.system_prompts,
        }
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:8]

    def run_id(self) -> str:
        """A stable name, so the same command finds (and resumes) the same run directory."""
        models = "+".join(re.sub(r"[^A-Za-z0-9.]+", "-", m.split("/", 1)[1]).strip("-") for m in self.models)
        return f"{self.suite}-{models[:60]}-{self.digest()}"

    def run_dir(self) -> Path:
        return self.out or Path("reports") / self.run_id()

    def to_dict(self) -> dict:
        """Plain JSON values; :meth:`from_dict` gives the same config back."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["generation"] = asdict(self.generation)
        out["prompts_dir"] = str(self.prompts_dir) if self.prompts_dir else None
        out["out"] = str(self.out) if self.out else None
        return json.loads(json.dumps(out, ensure_ascii=False))

    @classmethod
    def from_dict(cls, data: dict) -> "CompareConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        values = dict(data)
        for name in ("models", "langs", "ids", "judges"):
            if name in values:
                values[name] = tuple(values[name])
        for name in ("model_options", "system_prompts"):
            if name in values:
                values[name] = tuple(tuple(pair) for pair in values[name])
        if "generation" in values:
            values["generation"] = GenerationConfig(**values["generation"])
        for name in ("prompts_dir", "out"):
            if values.get(name):
                values[name] = Path(values[name])
        return cls(**values)
