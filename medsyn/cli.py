"""The ``medsyn`` command line.

    medsyn kg build [--out PATH]            build the knowledge graph (default location unless --out)
    medsyn kg show CODE [--top K] [--plot PNG]
    medsyn kg stats [--plot PNG]
    medsyn kg build --notes FILE [--notes_name NAME]   the graph of your own notes
    medsyn kg expand --endpoint URL --codes I21 I50     symptoms from a served model for codes no note covers
    medsyn generate --n N --out DIR --seed S [--model ID_OR_PATH] [--adapter PATH] [--config YAML]
    medsyn generate --endpoint URL [--endpoint URL2 …] [--model SERVED_NAME] [--max_concurrency N]
    medsyn serve [--port 8000] [--host 127.0.0.1]
    medsyn eval classify ... | medsyn eval quality DIR ... | medsyn eval consistency DIR --out NEW
    medsyn data instructions ...
    medsyn release dataset DIR --repo_id medsyn/ru-notes [--out REL] [--dry_run] [--public]
    medsyn release kg --repo_id medsyn/ru-icd10-kg [--out REL] [--dry_run]

Every command takes ``--help``. Subcommands that belong to other parts of the package (eval, data) are
dispatched to their own ``main(argv)``, imported only when used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import import_module

from medsyn import __version__
from medsyn.errors import GenerationStopped, Interrupted, MedsynError, MissingExtraError

__all__ = ["main"]

logger = logging.getLogger("medsyn")

# Subcommand groups implemented elsewhere: "group sub" -> "module:function(argv) -> int".
DISPATCH = {
    ("eval", "classify"): "medsyn.eval.commands:classify_main",
    ("eval", "quality"): "medsyn.eval.commands:quality_main",
    ("eval", "consistency"): "medsyn.eval.commands:consistency_main",
    ("data", "instructions"): "medsyn.finetune.data:main",
    ("release", "dataset"): "medsyn.release.commands:dataset_main",
    ("release", "kg"): "medsyn.release.commands:kg_main",
}


def setup_logging(level: str = "INFO") -> None:
    """Configure logging once for command-line use."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # one line per HTTP request would bury the progress bar; medsyn logs what matters about endpoints itself
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler's limit, ``kill``) raises :class:`~medsyn.errors.Interrupted`, so it stops as Ctrl-C does."""
    import signal
    import threading

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_interrupted)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {number}")
    return number


def _kg(argv: Sequence[str]) -> int:
    from medsyn.config import parse_bool
    from medsyn.corpus import NotesArgs
    from medsyn.kg import KGBuildConfig, MedicalKG, build_graph, load_graph
    from medsyn.paths import default_graph_path

    if argv and argv[0] == "expand":
        return _kg_expand(argv[1:])
    parser = argparse.ArgumentParser(prog="medsyn kg", description="Build and inspect the medical knowledge graph")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("expand", help="symptoms from a served model for codes no real note covers (see expand --help)")
    b = sub.add_parser("build", help="build the graph from real notes (RuMedTop3 train unless --notes)")
    b.add_argument("--out", default=None, help=f"graph file (default: {default_graph_path()})")
    for f in dataclasses.fields(KGBuildConfig) + dataclasses.fields(NotesArgs):
        kind = parse_bool if isinstance(f.default, bool) else type(f.default)
        kind = str if f.default is None else kind
        b.add_argument(
            f"--{f.name}", type=kind, default=f.default, help=f"{f.metadata['help']} (default: {f.default})"
        )
    s = sub.add_parser("show", help="a code: name, parents, top symptoms, examples")
    s.add_argument("code")
    s.add_argument("--graph", default=None, help="graph file (built if missing)")
    s.add_argument("--top", type=_positive_int, default=10, help="how many symptoms to list (>= 1)")
    s.add_argument("--plot", default=None, help="also draw the code's neighbourhood to this PNG")
    st = sub.add_parser("stats", help="counts that describe the graph")
    st.add_argument("--graph", default=None, help="graph file (built if missing)")
    st.add_argument("--plot", default=None, help="also plot symptoms and examples per category to this PNG")
    args = parser.parse_args(argv)

    if args.action == "build":
        cfg = KGBuildConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(KGBuildConfig)})
        corpus = NotesArgs(**{f.name: getattr(args, f.name) for f in dataclasses.fields(NotesArgs)}).load()
        kg = build_graph(cfg, corpus=corpus)
        path = kg.save(args.out or default_graph_path())
        print(f"graph written to {path}")
        print(json.dumps(MedicalKG.load(path).stats(), ensure_ascii=False, indent=2))
        return 0
    kg = load_graph(args.graph)
    if args.action == "show":
        print(format_code(kg, args.code, args.top))
        if args.plot:
            from medsyn.plots import plot_code_neighbourhood

            print(f"plot written to {plot_code_neighbourhood(kg, args.code, args.plot, top=args.top)}")
        return 0
    print(json.dumps(kg.stats(), ensure_ascii=False, indent=2))
    if args.plot:
        from medsyn.plots import plot_graph_stats

        print(f"plot written to {plot_graph_stats(kg, args.plot)}")
    return 0


def _kg_expand(argv: Sequence[str]) -> int:
    from medsyn.config import parse_args
    from medsyn.expand import ExpandArgs, expand_graph

    (args,) = parse_args(
        [ExpandArgs], argv, description="Ask a served model for the complaints of codes", prog="medsyn kg expand"
    )
    for code, symptoms in expand_graph(args).items():
        print(f"{code}: {', '.join(symptoms)}")
    return 0


def format_code(kg, code: str, top: int = 10) -> str:
    """The text ``medsyn kg show`` prints for a code."""
    entry = kg.entry(code)
    lines = [f"{entry['code']}  {entry['name']}  ({entry['level']})"]
    for parent in kg.parents(code):
        lines.append(f"  ⊂ {parent['code']}  {parent['name']}  ({parent['level']})")
    category = kg.category_of(code) if entry["level"] in ("category", "code") else None
    if category:
        own = entry["level"] == "code" and kg.has_own(entry["code"])
        target = entry["code"] if own else category
        if target != entry["code"]:
            lines.append(f"symptoms and examples of its category {category}:")
        symptoms = kg.symptoms(target)
        sources = Counter(e.source for e in symptoms)
        where = ", ".join(
            f"{n} {'mined from real notes' if s == 'notes' else 'from ' + s}" for s, n in sources.items()
        )
        lines.append(
            f"top symptoms ({min(top, len(symptoms))} of {len(symptoms)}; weight = specificity, count = notes"
            + (f"; {where}" if where else "")
            + "):"
        )
        for e in symptoms[:top]:
            tag = "" if e.source == "notes" else f"  [{e.source}]"
            lines.append(f"  {e.weight:6.3f}  {e.count:4d}  {e.symptom}{tag}")
        related = kg.related(category)
        if related:
            names = ", ".join(f"{c} {kg.entry(c)['name']} ({w:.2f})" for c, w in related)
            lines.append(f"related codes (similar symptoms): {names}")
        if own:
            lines.append(
                f"codes of {category} with notes of their own: "
                + ", ".join(f"{c} ({n})" for c, n in kg.code_notes(category).items())
            )
        examples = kg.examples(target)
        lines.append(f"real example notes: {len(examples)}")
        if examples:
            longest = max(examples, key=lambda e: len(e["text"]))
            lines.append(f"  e.g. [{longest['id']}] {longest['text'][:200]}")
    return "\n".join(lines)


def _generate(argv: Sequence[str]) -> int:
    from medsyn.backends import GenerationParams
    from medsyn.config import parse_args
    from medsyn.pipeline import GenerateConfig, run_generation, summary_line

    config, params = parse_args(
        [GenerateConfig, GenerationParams],
        argv,
        description="Generate synthetic notes",
        prog="medsyn generate",
        config=_job_folder_of(argv),
    )
    summary = run_generation(config, params)
    print(json.dumps(summary, ensure_ascii=False, indent=2), flush=True)
    logger.info("%s", summary_line(summary))
    return 0


def _job_folder_of(argv: Sequence[str]) -> dict[str, str]:
    """A generated folder's own ``medsyn_config.yaml`` resumes that folder, from whatever directory it is run.

    The saved config holds no ``out`` (no machine path); ``--config DIR/medsyn_config.yaml`` without ``--out``
    therefore means ``--out DIR`` when ``DIR`` holds a job file.
    """
    from pathlib import Path

    from medsyn.config import load_yaml
    from medsyn.job import JOB_FILE

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--out")
    known, _ = pre.parse_known_args(list(argv))
    if known.config is None or known.out is not None:
        return {}
    folder = Path(known.config).parent
    if (folder / JOB_FILE).exists() and "out" not in load_yaml(known.config):
        return {"out": str(folder)}
    return {}


def _serve(argv: Sequence[str]) -> int:
    from medsyn.config import parse_args
    from medsyn.serving.serve import ServeConfig, serve

    (config,) = parse_args(
        [ServeConfig], argv, description="Serve the embedded model on an OpenAI-compatible engine", prog="medsyn serve"
    )
    return serve(config)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medsyn`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="medsyn", description="Knowledge-graph-guided synthetic Russian clinical notes"
    )
    parser.add_argument("--version", action="version", version=f"medsyn {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("command", choices=["kg", "generate", "serve", "eval", "data", "release"], help="what to do")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="the command's own arguments (see COMMAND --help)")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    _stop_on_sigterm()
    try:
        if args.command == "kg":
            return _kg(args.rest)
        if args.command == "generate":
            return _generate(args.rest)
        if args.command == "serve":
            return _serve(args.rest)
        if not args.rest or args.rest[0] in ("-h", "--help"):
            choices = sorted(sub for group, sub in DISPATCH if group == args.command)
            print(f"usage: medsyn {args.command} {{{','.join(choices)}}} ...")
            return 0 if args.rest else 2
        key = (args.command, args.rest[0])
        if key not in DISPATCH:
            choices = sorted(sub for group, sub in DISPATCH if group == args.command)
            parser.error(f"unknown {args.command} command {args.rest[0]!r}; choose from {choices}")
        module, func = DISPATCH[key].split(":")
        return int(getattr(import_module(module), func)(args.rest[1:]) or 0)
    except GenerationStopped as err:
        logger.warning("%s", err)
        return err.exit_code
    except KeyboardInterrupt as err:
        how = "SIGTERM" if isinstance(err, Interrupted) else "Ctrl-C"
        logger.warning(
            "stopped by %s before it finished; nothing half-written was kept: run the same command again", how
        )
        return getattr(err, "exit_code", 130)
    except (MedsynError, MissingExtraError) as err:
        logger.error("%s", err)
        return 2
    except OSError as err:  # a path the system refuses (under a file, read-only, no space): one line, not a traceback
        if err.filename is None or not err.strerror:
            raise
        where = f"{err.filename}" + (f" -> {err.filename2}" if err.filename2 else "")
        logger.error("%s: %s; check the path and that it can be written", where, err.strerror)
        return 1


if __name__ == "__main__":
    sys.exit(main())
