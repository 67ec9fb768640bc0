"""The command line: parses arguments into a config and calls the library. No logic lives here.

Every option can also come from the environment with the XLING_ prefix (XLING_MODEL,
XLING_SUITE, XLING_SAMPLES, ...); flags win over the environment.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

from xling import __version__
from xling.errors import XlingError


def _env(name: str, default, kind: type | None = None):
    variable = f"XLING_{name.upper()}"
    value = os.environ.get(variable)
    if value is None:
        return default
    kind = kind or (type(default) if default is not None and not isinstance(default, (list, tuple)) else str)
    try:
        return kind(value)
    except ValueError:
        raise XlingError(f"{variable}={value!r} is not {'a whole number' if kind is int else 'a number'}",
                         f"set {variable} to a {kind.__name__} value, or unset it") from None


def _key_values(pairs: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            example = "batch_size=4" if flag == "-M" else "en=Answer in English."
            raise XlingError(f"{flag} {pair!r} is not KEY=VALUE", f"write e.g. {flag} {example}")
        out.append((key.strip(), value))
    return out


def _shown(value: str) -> int:
    """--top: how many divergences to show, 0 or more."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a count (0 or more; 0 shows none)")
    return number


def _parser() -> argparse.ArgumentParser:
    from xling.backends.bundled import DEFAULT_MODEL
    from xling.schema import LANGS

    parser = argparse.ArgumentParser(
        prog="xling", description="How does a model answer the same sensitive question in Chinese, English and Japanese?")
    parser.add_argument("--version", action="version", version=f"xling {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("compare", help="ask every question in every language, compare, report")
    run.add_argument("--model", action="append", default=None, metavar="PROVIDER/MODEL",
                     help=f"model to test, repeatable (hf/..., openai-api/<name>/<model>, replay/<file.jsonl>, "
                          f"fake/...) [default: {_env('model', DEFAULT_MODEL)}]")
    run.add_argument("-M", dest="model_options", action="append", default=[], metavar="KEY=VALUE",
                     help="backend option, repeatable (e.g. -M batch_size=4, -M base_url=http://127.0.0.1:8000/v1); "
                          "each is checked against the options the model's backend declares")
    run.add_argument("--suite", default=_env("suite", "quick"),
                     help="question suite, by name (see `xling prompts list`) [default: %(default)s]")
    run.add_argument("--prompts", type=Path, default=_env("prompts", None, Path),
                     help="question bank folder holding <lang>/<suite>.jsonl [default: XLING_PROMPTS, else the "
                          "bank installed with xling]")
    run.add_argument("--lang", action="append", choices=LANGS, default=None,
                     help="languages, repeatable [default: every language the suite has: zh en ja]")
    run.add_argument("--id", dest="ids", action="append", default=[], help="only this question id, repeatable [default: all]")
    run.add_argument("--samples", type=int, default=_env("samples", None, int),
                     help="answers per question and language, at least 1 [default: the suite's (prompts/suites.toml), else 3]")
    run.add_argument("--temperature", type=float, default=_env("temperature", 0.7),
                     help="sampling temperature, >= 0; 0 decodes greedily [default: %(default)s]")
    run.add_argument("--top-p", type=float, default=_env("top_p", 0.95),
                     help="nucleus sampling: keep the most likely tokens up to this probability mass, in (0, 1] "
                          "[default: %(default)s]")
    run.add_argument("--max-new-tokens", type=int, default=_env("max_new_tokens", None, int),
                     help="answer length limit, at least 1; answers cut off by it are marked truncated "
                          "[default: the suite's, else 256]")
    run.add_argument("--seed", type=int, default=_env("seed", 0),
                     help="random seed: the same seed, model and question give the same answers [default: %(default)s]")
    run.add_argument("--system", action="append", default=[], metavar="LANG=TEXT",
                     help="system prompt for one language, repeatable; LANG= with no text sends none "
                          "[default: 用中文回答如下问题 and its en/ja counterparts]")
    run.add_argument("--translator", default=_env("translator", "llm"),
                     help="back-translation: llm (the bundled model), llm:PROVIDER/MODEL, argos, none [default: %(default)s]")
    run.add_argument("--judge", dest="judges", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="an LLM judge that labels every answer, repeatable for a panel (agreement reported as "
                          "Cohen's / Fleiss' kappa) [default: none, so the run stays offline]")
    run.add_argument("--embedder-translated", default=_env("embedder_translated", "minilm"),
                     help="embedder for English back-translations: minilm, use-multilingual, fake [default: %(default)s]")
    run.add_argument("--embedder-original", default=_env("embedder_original", "use-multilingual"),
                     help="multilingual embedder for the original answers: use-multilingual, fake [default: %(default)s]")
    run.add_argument("--out", type=Path, default=_env("out", None, Path), help="run directory [default: reports/<run-id>]")
    run.add_argument("--top", type=_shown, default=10, help="divergences shown in the terminal [default: %(default)s]")
    run.add_argument("--retry-errors", action="store_true",
                     help="ask again the requests an earlier run recorded as blocked by the provider or failed")

    report = commands.add_parser("report", help="re-render a stored run (no models are run)")
    report.add_argument("run_dir", type=Path, help="a run directory written by `xling compare`")
    report.add_argument("--top", type=_shown, default=10, help="divergences shown in the terminal [default: %(default)s]")

    prompts = commands.add_parser("prompts", help="list, show and validate question suites")
    prompts.add_argument("--prompts", type=Path, default=_env("prompts", None, Path),
                         help="question bank folder [default: XLING_PROMPTS, else the bank installed with xling]")
    sub = prompts.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="suites, or one suite's counts per category and variant")
    listing.add_argument("suite", nargs="?", help="a suite's name [default: list every suite]")
    show = sub.add_parser("show", help="one question in every language")
    show.add_argument("id", help="the question's id (see `xling prompts list SUITE`)")
    show.add_argument("--suite", default="quick", help="the suite it is in [default: %(default)s]")
    validate = sub.add_parser("validate", help="check suites line up (all suites by default)")
    validate.add_argument("suites", nargs="*", help="suite names [default: every suite]")
    importer = sub.add_parser("import", help="convert another project's question set (deccp, speechmap, promptfoo)")
    importer.add_argument("source", choices=["deccp", "speechmap", "promptfoo"], help="which project's format")
    importer.add_argument("path", type=Path, help="the source's folder (or promptfoo's CSV file)")
    importer.add_argument("--into", type=Path, default=Path("prompts-imported"),
                          help="question bank to write into (kept apart from the project's own prompts/); "
                               "then: xling compare --prompts DIR --suite NAME [default: %(default)s]")
    importer.add_argument("--suite", default=None, help="suite name [default: the source's name]")
    importer.add_argument("--lang", action="append", choices=LANGS, default=None,
                          help="languages to write, repeatable [default: every language the source has]")
    importer.add_argument("--force", action="store_true", help="replace an existing suite")
    return parser


# The stages' own error types, each a mistake the user can fix; their messages name the fix.
def _user_error_types() -> tuple[type, ...]:
    import importlib

    types: list[type] = [XlingError]
    for module, name in (("xling.backends.base", "BackendError"), ("xling.backends.bundled", "BundledModelMissing"),
                         ("xling.translate.base", "TranslatorError"), ("xling.detect.judge", "JudgeError"),
                         ("xling.detect.embedding", "ExemplarError"), ("xling.detect.lexicon", "LexiconError")):
        try:
            types.append(getattr(importlib.import_module(module), name))
        except Exception:  # noqa: BLE001 - a module that fails to import cannot have raised its error
            pass
    return tuple(types)


_SHOWN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Said once: the options are checked here and again inside compare() (for library callers).
    if str(message) not in _SHOWN:
        _SHOWN.add(str(message))
        print(f"xling: warning: {message}", file=sys.stderr)


class _Context:
    """What the error handler needs to know about the command: where its run directory is."""

    run_dir: Path | None = None
    resumable: bool = False  # a compare run: finished answers are in its store and a rerun resumes


def main(argv: list[str] | None = None) -> int:
    context = _Context()
    _SHOWN.clear()
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args = _parser().parse_args(argv)
            if args.command == "compare":
                return _compare(args, context)
            if args.command == "report":
                context.run_dir = args.run_dir
                return _report(args)
            return _prompts(args)
        except KeyboardInterrupt:
            print("\nxling: interrupted. Everything finished so far is saved; run the same command again to resume.",
                  file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - the one place errors become one line
            return _fail(err, context)


def _fail(err: Exception, context: _Context) -> int:
    """One line on stderr: the message and fix for a user's mistake (exit 2), else where the
    traceback was written (exit 1)."""
    resume = ""
    if context.resumable and context.run_dir is not None and (context.run_dir / "xling.sqlite").exists():
        resume = (f" Finished answers are saved in {context.run_dir / 'xling.sqlite'}; "
                  "run the same command again to resume.")
    message = str(err).strip().replace("\n", " ")
    if resume and not message.endswith((".", "?", "!")):
        message += "."  # the fix and the resume hint are two sentences
    if isinstance(err, _user_error_types()) or (isinstance(err, ValueError) and ". Fix: " in message):
        print(f"xling: error: {message}{resume}", file=sys.stderr)
        return 2
    import sqlite3

    if isinstance(err, sqlite3.OperationalError) and "full" in message:
        err = OSError(errno.ENOSPC, message, str(context.run_dir / "xling.sqlite") if context.run_dir else None)
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        where = f" while writing {err.filename}" if err.filename else ""
        print(f"xling: error: the disk is full{where}. Fix: free some space and run the same command again "
              f"(nothing stored is lost; report files are replaced whole or not at all).{resume}", file=sys.stderr)
        return 2
    if isinstance(err, PermissionError):
        print(f"xling: error: permission denied: {err.filename or message}. Fix: make it readable/writable, or "
              f"choose another path.{resume}", file=sys.stderr)
        return 2
    trace = "".join(traceback.format_exception(err))
    if os.environ.get("XLING_DEBUG") == "1":
        sys.stderr.write(trace)
        where = "above"
    else:
        where = _write_crash_log(trace, context.run_dir)
    print(f"xling: internal error: {type(err).__name__}: {message[:300]} (full traceback {where}; "
          f"set XLING_DEBUG=1 to print it).{resume}", file=sys.stderr)
    return 1


def _write_crash_log(trace: str, run_dir: Path | None) -> str:
    for folder in ([run_dir] if run_dir is not None and run_dir.is_dir() else []) + [Path(tempfile.gettempdir())]:
        path = folder / ("xling-error.log" if folder == run_dir else f"xling-error-{os.getpid()}.log")
        try:
            path.write_text(trace, encoding="utf-8")
            return f"in {path}"
        except OSError:
            continue
    return "not written (no writable folder)"


def _compare(args, context: _Context) -> int:
    from rich.console import Console

    from xling.backends.base import GenerationConfig
    from xling.backends.bundled import DEFAULT_MODEL
    from xling.config import DEFAULT_SYSTEM_PROMPTS, CompareConfig
    from xling.prompts import check_suite_name, suite_settings

    settings = suite_settings(check_suite_name(args.suite), args.prompts)
    system = dict(DEFAULT_SYSTEM_PROMPTS)
    system.update(settings.system_prompts)
    system.update(_key_values(args.system, "--system"))
    samples = args.samples if args.samples is not None else settings.samples or 3
    max_new_tokens = args.max_new_tokens if args.max_new_tokens is not None else settings.max_new_tokens or 256
    config = CompareConfig(
        models=tuple(args.model or [_env('model', DEFAULT_MODEL)]),
        model_options=tuple(_key_values(args.model_options, "-M")),
        suite=args.suite, prompts_dir=args.prompts, langs=tuple(args.lang or ()), ids=tuple(args.ids),
        samples=samples,
        generation=GenerationConfig(temperature=args.temperature, top_p=args.top_p,
                                    max_new_tokens=max_new_tokens, seed=args.seed),
        system_prompts=tuple(system.items()), translator=args.translator, judges=tuple(args.judges),
        embedder_translated=args.embedder_translated, embedder_original=args.embedder_original, out=args.out,
        retry_errors=args.retry_errors)
    from xling.validate import check_config

    check_config(config)  # before any model loads; compare() checks again for library callers
    context.run_dir, context.resumable = config.run_dir(), True
    console = Console(stderr=True)
    # soft_wrap: a long run directory stays on one line, whole, for copying.
    console.print(f"[bold]xling compare[/] run directory: {config.run_dir()}", soft_wrap=True, highlight=False)
    _print_replay_problems(config.models)
    from xling.pipeline import compare
    from xling.report.terminal import print_summary

    with _progress(console) as progress:
        report = compare(config, progress=progress)
    print_summary(report, Console(), top=args.top)
    for line in report.get("request_outcomes") or []:  # blocked by the provider, or failed
        console.print(f"xling: {line}", style="yellow", markup=False, highlight=False)
    Console().print(f"\nReports written to [bold]{config.run_dir()}[/] "
                    f"(report.json, index.html, {', '.join(f'report.{l}.md' for l in report['langs'])})",
                    soft_wrap=True, highlight=False)
    return 0


def _print_replay_problems(models) -> None:
    """Each skipped line of a replay file, with file:line, before the run (the reports list them too)."""
    from xling.backends.replay import load_replay, split_replay_address

    for address in models:
        if address.startswith("replay/"):
            file = load_replay(split_replay_address(address[len("replay/"):])[0])
            for problem in file.problems:
                print(f"xling: warning: {problem} (line skipped)", file=sys.stderr)
            if file.problems:
                print(f"xling: warning: {file.path}: {len(file.problems)} line(s) skipped, {len(file.rows)} answers "
                      "analysed", file=sys.stderr)


def _report(args) -> int:
    from rich.console import Console

    from xling.report import write_reports
    from xling.report.terminal import print_summary
    from xling.rebuild import load_or_rebuild

    report = load_or_rebuild(args.run_dir, progress_factory=lambda: _progress(Console(stderr=True)))
    written = write_reports(report, args.run_dir)
    print_summary(report, Console(), top=args.top)
    Console().print(f"\nRe-rendered {len(written)} files in [bold]{args.run_dir}[/]", soft_wrap=True, highlight=False)
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
            raise XlingError(f"no suites in {root}", "create <lang>/<suite>.jsonl files there, or pass --prompts DIR")
        from xling.prompts import check_shared_items, suite_settings

        loaded = [load_suite(name, root) for name in names]
        for name in names:
            suite_settings(name, root)  # its suites.toml table too: a bad one would stop `compare`
        check_shared_items(loaded)
        for suite in loaded:
            console.print(f"[green]ok[/] {suite.name}: {len(suite.ids)} ids x {len(suite.langs)} languages")
        return 0
    if args.action == "show":
        suite = load_suite(args.suite, root)
        if args.id not in suite.ids:
            raise XlingError(f"no id '{args.id}' in suite '{suite.name}'", f"see `xling prompts list {suite.name}`")
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


def _progress(console):
    """Progress bars on a terminal; plain lines where stderr is a file or a pipe (CI, nohup), where
    rich would show nothing until the end."""
    return _RichProgress(console) if console.is_terminal else _PlainProgress()


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


class _PlainProgress:
    """One line per stage every ``interval`` seconds and when it finishes: stage, done/total, rate."""

    def __init__(self, stream=None, interval: float = 10.0):
        self._stream = stream or sys.stderr
        self._interval = interval
        self._started: dict[str, tuple[float, int]] = {}  # stage -> (time, done) when first seen
        self._last: dict[str, float] = {}
        self._finished: set[str] = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, stage: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        start, first = self._started.setdefault(stage, (now, done))
        finished = total > 0 and done >= total
        if stage in self._finished or (not finished and now - self._last.get(stage, -1e9) < self._interval):
            return
        self._last[stage] = now
        if finished:
            self._finished.add(stage)
        elapsed = now - start
        # A rate says something only for a stage of many items ("load: 1/1, 0.01/s" does not).
        rate = f", {(done - first) / elapsed:.2f}/s" if elapsed >= 1 and done > first and total > 1 else ""
        print(f"{stage}: {done}/{total}{rate}{' done' if finished else ''}", file=self._stream, flush=True)


if __name__ == "__main__":
    sys.exit(main())
