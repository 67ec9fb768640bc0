"""Everything about a compare run that can be checked before any model runs, checked first.

A mistake found after twenty minutes of generation costs the user twenty minutes; each check here
costs milliseconds and ends in one line naming the option or file and the fix.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
from pathlib import Path

from xling.backends import helper_options, on_models_server
from xling.config import CompareConfig
from xling.errors import XlingError


def check_config(config: CompareConfig) -> None:
    """Raise :class:`XlingError` (or a stage's own error type) for the first problem found."""
    check_generation(config)
    check_system_prompts(config)
    check_suite(config)
    options = dict(config.model_options)
    for address in config.models:
        check_model(address, options)
    if config.replay_only:
        check_replay_selection(config)  # once the files are known to load
        if options:
            import warnings

            warnings.warn(f"-M {', '.join(options)} ignored: replayed answers are read from their file, not generated",
                          UserWarning, stacklevel=2)
    for address in config.judges:
        check_helper(address, options, config.models)
    check_translator(config.translator, options, config.models)
    check_embedder(config.embedder_translated, "--embedder-translated")
    check_embedder(config.embedder_original, "--embedder-original")
    check_run_dir(config.run_dir())


def check_generation(config: CompareConfig) -> None:
    gen = config.generation
    if config.samples < 1:
        raise XlingError(f"--samples {config.samples} is below 1", "--samples 3 (several samples give rates and intervals)")
    if gen.max_new_tokens < 1:
        raise XlingError(f"--max-new-tokens {gen.max_new_tokens} is below 1 (every answer would be empty)",
                         "--max-new-tokens 256")
    if not math.isfinite(gen.temperature) or gen.temperature < 0:
        raise XlingError(f"--temperature {gen.temperature} is not a number >= 0",
                         "--temperature 0.7 (0 decodes greedily)")
    if not math.isfinite(gen.top_p) or not 0 < gen.top_p <= 1:
        raise XlingError(f"--top-p {gen.top_p} is not in (0, 1]", "--top-p 0.95 (1 keeps every token)")


def check_system_prompts(config: CompareConfig) -> None:
    """Each system prompt is for a language xling asks in (a typo such as ``cn=`` would otherwise
    be ignored without a word)."""
    from xling.schema import LANGS

    for lang, _ in config.system_prompts:
        if lang not in LANGS:
            raise XlingError(f"--system {lang}=...: {lang!r} is not a language xling asks in",
                             f"use one of {', '.join(LANGS)}, e.g. --system zh=用中文回答如下问题")


def check_suite(config: CompareConfig) -> None:
    """The suite exists and lines up in the languages asked, and each ``--id`` is in it. A run of
    replayed answers only takes metadata from the suite (its questions come from the files), so
    there the suite must exist only when named (the default may be missing from a bank given with
    --prompts); its ``--id`` are checked against the files (``check_replay_selection``)."""
    from xling.prompts import check_suite_name, load_suite, suites

    if config.replay_only:
        check_suite_name(config.suite)
        known = suites(config.prompts_dir)
        if config.suite != CompareConfig.suite and config.suite not in known:
            raise XlingError(f"--suite {config.suite}: no such suite (a replay takes its categories from it)",
                             f"choose one of {', '.join(known) or 'none found'}, or leave --suite out")
        return
    suite = load_suite(config.suite, config.prompts_dir, config.langs)
    unknown = [pid for pid in config.ids if pid not in suite.ids]
    if unknown:
        raise XlingError(f"--id {', '.join(unknown)} not in suite '{config.suite}'", f"see `xling prompts list {config.suite}`")


def check_model(address: str, options: dict) -> None:
    """The address names a provider, its ``-M`` options are ones it takes, and the files it
    names exist; a hub id on a machine without hub access is refused now rather than after
    a minute of retries."""
    from xling.backends import check_options, split_address

    provider, model = split_address(address)
    if provider == "replay":
        check_replay(address)
        return
    check_options(address, options)
    if provider == "hf":
        check_hf_model(model)
    check_server(address, options)


def check_server(address: str, options: dict, url_option: bool = True) -> None:
    """A server's address names the server and a base URL is set for it, found now rather than
    when the model, the judge or the translator first sends a request (no request is sent)."""
    from xling.backends import split_address

    provider, model = split_address(address)
    if provider == "openai-api":
        from xling.backends.openai_api import server_settings

        server_settings(model, options, url_option=url_option)


def check_helper(address: str, options: dict, models: tuple[str, ...]) -> None:
    """A judge or a translating model, with the ``-M`` options it will be given."""
    check_server(address, helper_options(address, options, models), on_models_server(address, models))


def check_replay(address: str) -> None:
    from xling.backends.replay import load_replay, split_replay_address

    path, _ = split_replay_address(address[len("replay/"):])
    file = load_replay(path)
    if not file.rows:
        shown = "; ".join(file.problems[:3]) + (f"; and {len(file.problems) - 3} more" if len(file.problems) > 3 else "")
        raise XlingError(f"no usable answers in {file.path}" + (f" ({len(file.problems)} bad lines: {shown})"
                                                                 if file.problems else " (the file is empty)"),
                         'write one JSON object a line with model, prompt_id, lang, prompt and response '
                         "(see `xling compare --help` and the README's Replay section)")


def check_replay_selection(config: CompareConfig) -> None:
    """Each ``--id`` of a replay run names a question some replayed file answers, and each
    ``--lang`` a language one answers in (else the run would end with an empty report and no word
    why)."""
    from xling.backends.replay import load_replay, split_replay_address

    rows = []
    for address in config.models:
        path, model = split_replay_address(address[len("replay/"):])
        rows += [row for row in load_replay(path).rows if model in (None, row.model)]  # #model picks one
    for flag, asked, held in (("--id", config.ids, {row.prompt_id for row in rows}),
                              ("--lang", config.langs, {row.lang for row in rows})):
        unknown = [value for value in asked if value not in held]
        if unknown:
            shown = ", ".join(sorted(held)[:5]) + (", ..." if len(held) > 5 else "")
            raise XlingError(f"{flag} {', '.join(unknown)}: no replayed answer to it",
                             f"use one the files hold ({shown}), or leave {flag} out")


def check_hf_model(model: str) -> None:
    if model.startswith("bundled:"):
        return  # the bundled model's own check names the package to install
    path = Path(model).expanduser()
    if path.suffix == ".gguf" or model.startswith((".", "/", "~")) or path.exists():
        if not path.exists():
            raise XlingError(f"model file or folder {path} not found", "check the path after hf/")
        return
    if model.count("/") != 1:
        raise XlingError(f"hf/{model} is neither a local path nor a hub id (Org/Name)",
                         "give a local model folder, a .gguf file, or a hub id like hf/Qwen/Qwen2.5-0.5B-Instruct")
    if _in_hub_cache(model):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise XlingError(f"hf/{model} is a hub id, it is not in the local hub cache, and HF_HUB_OFFLINE is set",
                         "download it on a machine with hub access first, or point hf/ at a local model folder")
    if not _hub_reachable():
        raise XlingError(f"hf/{model} is a hub id, it is not in the local hub cache, and huggingface.co cannot "
                         "be reached", "connect to the network, or point hf/ at a local model folder or .gguf file")


def _in_hub_cache(model: str) -> bool:
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    snapshots = home / f"models--{model.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def _hub_reachable(timeout: float = 3.0) -> bool:
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://", 1)[-1].split("/", 1)[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def check_translator(spec: str, options: dict, models: tuple[str, ...]) -> None:
    from xling.translate import REGISTRY

    name, _, model = spec.partition(":")
    if name not in REGISTRY:
        raise XlingError(f"--translator {spec}: no such translator",
                         f"use one of {', '.join(REGISTRY)} (llm:PROVIDER/MODEL picks the translating model)")
    if name == "llm" and model:
        check_helper(model, options, models)
    if name == "argos":
        import importlib.util

        if importlib.util.find_spec("argostranslate") is None:
            raise XlingError("--translator argos needs the argostranslate package",
                             "pip install 'xling[argos]', or use --translator llm")


def check_embedder(name: str, flag: str) -> None:
    from xling.compare.embed import EMBEDDERS

    if name not in EMBEDDERS:
        raise XlingError(f"{flag} {name}: no such embedder", f"use one of {', '.join(EMBEDDERS)}")


def check_run_dir(run_dir: Path) -> None:
    """The run directory exists or can be made, is a directory, and takes files."""
    fix = "pass --out a folder you can write to (or run from one: the default is ./reports/<run-id>)"
    existing = next((p for p in [run_dir, *run_dir.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise XlingError(f"run directory {run_dir}: {existing} is a file, not a folder", fix)
    # Probe the nearest folder that exists rather than make the run directory: a mistake found
    # after this check (an unknown suite) must not leave an empty run directory behind.
    try:
        with tempfile.NamedTemporaryFile(dir=existing or Path.cwd(), prefix=".xling-write-check"):
            pass
    except OSError as err:
        raise XlingError(f"run directory {run_dir} cannot be written ({err.strerror or err})", fix) from None
