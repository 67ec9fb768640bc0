"""The command line: parses arguments into a config and calls the library. No logic lives here.

Every option can also come from the environment with the XLING_ prefix (XLING_MODEL,
XLING_SUITE, XLING_SAMPLES, ...); flags win over the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xling import __version__


def _env(name: str, default):
    value = os.environ.get(f"XLING_{name.upper()}")
    if value is None:
        return default
    return type(default)(value) if default is not None and not isinstance(default, (list, tuple)) else value


def _key_values(pairs: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"xling: error: {flag} {pair!r} is not key=value. Fix: write e.g. {flag} batch_size=4")
        out.append((key.strip(), value))
    return out


def _parser() -> argparse.ArgumentParser:
    from xling.backends.bundled import DEFAULT_MODEL
    from xling.schema import LANGS

    parser = argparse.ArgumentParser(
        prog="xling", description="How does a model answer the same sensitive question in Chinese, English and Japanese?",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"xling {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("compare", help="ask every question in every language, compare, report",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run.add_argument("--model", action="append", default=None, metavar="PROVIDER/MODEL",
                     help=f"model to test, repeatable (hf/..., openai-api/<name>/<model>, replay/<file.jsonl>, "
                          f"fake/...) [default: {_env('model', DEFAULT_MODEL)}]")
    run.add_argument("-M", dest="model_options", action="append", default=[], metavar="KEY=VALUE",
                     help="backend option, repeatable (e.g. -M batch_size=4, -M base_url=http://127.0.0.1:8000/v1)")
    run.add_argument("--suite", default=_env("suite", "quick"), help="question suite (see `xling prompts list`)")
    run.add_argument("--prompts", type=Path, default=_env("prompts", None), help="question bank directory (default: the repository's prompts/)")
    run.add_argument("--lang", action="append", choices=LANGS, default=None, help="languages, repeatable [default: every language the suite has: zh en ja]")
    run.add_argument("--id", dest="ids", action="append", default=[], help="only this question id, repeatable")
    run.add_argument("--samples", type=int, default=_env("samples", None),
                     help="answers per question and language [default: the suite's (prompts/suites.toml), else 3]")
    run.add_argument("--temperature", type=float, default=_env("temperature", 0.7))
    run.add_argument("--top-p", type=float, default=_env("top_p", 0.95))
    run.add_argument("--max-new-tokens", type=int, default=_env("max_new_tokens", None),
                     help="answer length limit; answers cut off by it are marked truncated [default: the suite's, else 256]")
    run.add_argument("--seed", type=int, default=_env("seed", 0))
    run.add_argument("--system", action="append", default=[], metavar="LANG=TEXT",
                     help="system prompt for one language, repeatable (default: 用中文回答如下问题 and its en/ja "
                          "counterparts); LANG= with no text sends none")
    run.add_argument("--translator", default=_env("translator", "llm"),
                     help="back-translation: llm (the bundled model), llm:PROVIDER/MODEL, argos, none")
    run.add_argument("--judge", dest="judges", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="an LLM judge that labels every answer, repeatable for a panel (agreement reported as "
                          "Cohen's / Fleiss' kappa); none by default, so the run stays offline")
    run.add_argument("--embedder-translated", default=_env("embedder_translated", "minilm"),
                     help="embedder for English back-translations (minilm, use-multilingual, fake)")
    run.add_argument("--embedder-original", default=_env("embedder_original", "use-multilingual"),
                     help="multilingual embedder for the original answers (use-multilingual, fake)")
    run.add_argument("--out", type=Path, default=_env("out", None), help="run directory [default: reports/<run-id>]")
    run.add_argument("--top", type=int, default=10, help="divergences shown in the terminal")
    run.add_argument("--retry-errors", action="store_true",
                     help="ask again the requests an earlier run recorded as blocked by the provider or failed")

    report = commands.add_parser("report", help="re-render a stored run (no models are run)")
    report.add_argument("run_dir", type=Path, help="a run directory holding report.json")
    report.add_argument("--top", type=int, default=10)

    prompts = commands.add_parser("prompts", help="list, show and validate question suites")
    prompts.add_argument("--prompts", type=Path, default=_env("prompts", None), help="question bank directory")
    sub = prompts.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="suites, or one suite's counts per category and variant")
    listing.add_argument("suite", nargs="?")
    show = sub.add_parser("show", help="one question in every language")
    show.add_argument("id")
    show.add_argument("--suite", default="quick")
    validate = sub.add_parser("validate", help="check suites line up (all suites by default)")
    validate.add_argument("suites", nargs="*")
    importer = sub.add_parser("import", help="convert another project's question set (deccp, speechmap, promptfoo)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    importer.add_argument("source", choices=["deccp", "speechmap", "promptfoo"])
    importer.add_argument("path", type=Path, help="the source's folder (or promptfoo's CSV file)")
    importer.add_argument("--into", type=Path, default=Path("prompts-imported"),
                          help="question bank to write into (kept apart from the project's own prompts/); "
                               "then: xling compare --prompts DIR --suite NAME")
    importer.add_argument("--suite", default=None, help="suite name [default: the source's name]")
    importer.add_argument("--lang", action="append", choices=LANGS, default=None,
                          help="languages to write [default: every language the source has]")
    importer.add_argument("--force", action="store_true", help="replace an existing suite")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "report":
            return _report(args)
        return _prompts(args)
    except KeyboardInterrupt:
        print("\nxling: interrupted. Everything finished so far is saved; run the same command again to resume.",
              file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - turn known errors into one clear line
        from xling.backends.base import BackendError
        from xling.prompts import PromptError
        from xling.translate.base import TranslatorError
        from xling.backends.bundled import BundledModelMissing

        if isinstance(err, (PromptError, BackendError, TranslatorError, BundledModelMissing, ValueError, FileNotFoundError)):
            print(f"xling: error: {err}", file=sys.stderr)
            return 2
        raise


def _compare(args) -> int:
    from rich.console import Console

    from xling.backends.base import GenerationConfig
    from xling.backends.bundled import DEFAULT_MODEL
    from xling.config import DEFAULT_SYSTEM_PROMPTS, CompareConfig
    from xling.prompts import suite_settings

    settings = suite_settings(args.suite, args.prompts)
    system = dict(DEFAULT_SYSTEM_PROMPTS)
    system.update(settings.system_prompts)
    system.update(_key_values(args.system, "--system"))
    samples = args.samples if args.samples is not None else settings.samples or 3
    max_new_tokens = args.max_new_tokens if args.max_new_tokens is not None else settings.max_new_tokens or 256
    config = CompareConfig(
        models=tuple(args.model or [_env("model", DEFAULT_MODEL)]),
        model_options=tuple(_key_values(args.model_options, "-M")),
        suite=args.suite, prompts_dir=args.prompts, langs=tuple(args.lang or ()), ids=tuple(args.ids),
        samples=samples,
        generation=GenerationConfig(temperature=args.temperature, top_p=args.top_p,
                                    max_new_tokens=max_new_tokens, seed=args.seed),
        system_prompts=tuple(system.items()), translator=args.translator, judges=tuple(args.judges),
        embedder_translated=args.embedder_translated, embedder_original=args.embedder_original, out=args.out,
        retry_errors=args.retry_errors)
    if config.samples < 1:
        raise ValueError("--samples must be at least 1. Fix: --samples 3 (several samples give rates and intervals)")
    console = Console(stderr=True)
    console.print(f"[bold]xling compare[/] run directory: {config.run_dir()}")
    from xling.pipeline import compare
    from xling.report.terminal import print_summary

    with _RichProgress(console) as progress:
        report = compare(config, progress=progress)
    print_summary(report, Console(), top=args.top)
    for line in report.get("request_outcomes") or []:  # blocked by the provider, or failed
        console.print(f"xling: {line}", style="yellow", markup=False, highlight=False)
    Console().print(f"\nReports written to [bold]{config.run_dir()}[/] "
                    f"(report.json, index.html, {', '.join(f'report.{l}.md' for l in report['langs'])})")
    return 0


def _report(args) -> int:
    import json

    from rich.console import Console

    from xling.report import write_reports
    from xling.report.terminal import print_summary

    path = args.run_dir / "report.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found. Fix: point `xling report` at a directory written by `xling compare`")
    report = json.loads(path.read_text(encoding="utf-8"))
    written = write_reports(report, args.run_dir)
    print_summary(report, Console(), top=args.top)
    Console().print(f"\nRe-rendered {len(written)} files in [bold]{args.run_dir}[/]")
    return 0


def _prompts(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from xling.prompts import default_prompts_dir, load_suite, suites

    console = Console()
    root = args.prompts or default_prompts_dir()
    if args.action == "import":
        from xling.importers import run_import

        paths, notes = run_import(args.source, args.path, args.into, suite=args.suite,
                                  langs=tuple(args.lang) if args.lang else None, overwrite=args.force)
        for note in notes:
            console.print(f"  {note}", markup=False)
        for path in paths:
            console.print(f"wrote {path}", markup=False)
        suite = paths[0].stem if paths else args.suite
        langs = " ".join(f"--lang {p.parent.name}" for p in paths)
        console.print(f"Next: xling compare --prompts {args.into} --suite {suite} {langs}", markup=False)
        return 0
    if args.action == "validate":
        names = args.suites or suites(root)
        if not names:
            raise FileNotFoundError(f"no suites in {root}. Fix: create prompts/<lang>/<suite>.jsonl")
        from xling.prompts import check_shared_items

        loaded = [load_suite(name, root) for name in names]
        check_shared_items(loaded)
        for suite in loaded:
            console.print(f"[green]ok[/] {suite.name}: {len(suite.ids)} ids x {len(suite.langs)} languages")
        return 0
    if args.action == "show":
        suite = load_suite(args.suite, root)
        if args.id not in suite.ids:
            raise ValueError(f"no id '{args.id}' in suite '{suite.name}'. Fix: see `xling prompts list {suite.name}`")
        for lang in suite.langs:
            item = suite.get(args.id, lang)
            console.print(f"[bold]{lang}[/] ({item.category}, {item.variant}"
                          f"{', base ' + item.base if item.base else ''}): {item.text}")
            for fact in item.key_facts:
                console.print(f"    key fact: {fact}")
        # Notes (what a code word means) are written once, in any language's line.
        note = next((suite.get(args.id, lang).note for lang in suite.langs if suite.get(args.id, lang).note), None)
        if note:
            console.print(f"[dim]note: {note}[/]")
        return 0
    if not args.suite:
        table = Table(title=f"Suites in {root}")
        for column in ("suite", "ids", "languages"):
            table.add_column(column)
        for name in suites(root):
            suite = load_suite(name, root, check_language=False)
            table.add_row(name, str(len(suite.ids)), " ".join(suite.langs))
        console.print(table)
        return 0
    suite = load_suite(args.suite, root)
    from collections import Counter

    counts = Counter((p.category, p.variant) for p in suite.prompts[suite.langs[0]])
    variants = sorted({v for _, v in counts})
    table = Table(title=f"{suite.name}: {len(suite.ids)} ids, each in {', '.join(suite.langs)}")
    table.add_column("category")
    for variant in variants:
        table.add_column(variant, justify="right")
    table.add_column("total", justify="right")
    for category in sorted({c for c, _ in counts}):
        row = [counts[(category, v)] for v in variants]
        table.add_row(category, *[str(n) if n else "" for n in row], str(sum(row)))
    console.print(table)
    return 0


class _RichProgress:
    """Adapts the pipeline's (stage, done, total) callbacks to rich progress bars."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        self._progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        # "generate <model> · 12.3 ans/s, ..." is one bar whose text carries live figures.
        name = stage.split(" · ", 1)[0]
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(stage, total=total)
        self._progress.update(self._tasks[name], completed=done, total=total, description=stage)


if __name__ == "__main__":
    sys.exit(main())
