"""The README says only what is true: its commands parse, its files exist, its cheap code runs.

Every line of a ``bash`` block that calls ``medsyn``, ``accelerate launch … scripts/*.py`` or ``make`` is checked
against the real parsers (flags, recipes, config files, targets) without running the expensive work. The
``medsyn kg`` commands run for real, and the output the README shows for ``medsyn kg show M54`` must match.
``python`` blocks run unless the line before the block is an HTML comment ``<!-- not run by tests: why -->``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[tuple[str, str]]:
    """(the last non-empty line before the block, the block's text) for each fenced block of ``lang``."""
    found, lines, i = [], README.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```") and lines[i][3:].strip():
            end = lines.index("```", i + 1)
            if lines[i][3:].strip() == lang:
                before = next((line for line in reversed(lines[:i]) if line.strip()), "")
                found.append((before, "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        i += 1
    return found


def _command_lines() -> list[str]:
    """Each shell command of the README's bash blocks, continuations joined and comments dropped."""
    lines = []
    for _, body in _blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip().rstrip("&").strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _parsers() -> dict[tuple[str, ...], list[type]]:
    from medsyn.backends import GenerationParams
    from medsyn.eval.commands import ClassifyArgs, ConsistencyArgs, QualityArgs
    from medsyn.finetune.args import InstructionDataArgs
    from medsyn.pipeline import GenerateConfig
    from medsyn.release.kg import KGReleaseArgs
    from medsyn.release.notes import DatasetReleaseArgs
    from medsyn.serving.serve import ServeConfig

    return {
        ("generate",): [GenerateConfig, GenerationParams],
        ("serve",): [ServeConfig],
        ("eval", "classify"): [ClassifyArgs],
        ("eval", "quality"): [QualityArgs],
        ("eval", "consistency"): [ConsistencyArgs],
        ("data", "instructions"): [InstructionDataArgs],
        ("release", "dataset"): [DatasetReleaseArgs],
        ("release", "kg"): [KGReleaseArgs],
    }


def _check_files(argv: list[str]) -> None:
    for flag in ("--config", "--config_file"):
        if flag in argv:
            path = argv[argv.index(flag) + 1]
            assert (ROOT / path).exists() or Path(path).name == "medsyn_config.yaml", f"{path} does not exist"


def _check_medsyn(argv: list[str]) -> None:
    from medsyn.config import parse_args

    parsers = _parsers()
    if argv[0] == "kg":
        return  # run for real below
    key = next((k for k in parsers if tuple(argv[: len(k)]) == k), None)
    assert key is not None, f"the README runs `medsyn {' '.join(argv[:2])}`, which is not a medsyn command"
    rest = argv[len(key) :]
    if (
        key in (("eval", "quality"), ("eval", "consistency"), ("release", "dataset"))
        and rest
        and not rest[0].startswith("-")
    ):
        rest = ["--source", *rest]
    _check_files(rest)
    parse_args(parsers[key], [a for a in rest if a != "..."])


def test_every_readme_command_parses():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    checked = 0
    for line in _command_lines():
        argv = shlex.split(line)
        if argv[0] == "medsyn":
            _check_medsyn(argv[1:])
        elif argv[:2] == ["accelerate", "launch"]:
            _check_files(argv)
            script = next(a for a in argv if a.endswith(".py"))
            assert (ROOT / script).exists(), f"{script} does not exist"
            if script == "scripts/finetune.py":
                from medsyn.config import parse_args
                from medsyn.finetune.args import FINETUNE_ARGS

                rest = argv[argv.index(script) + 1 :]
                parse_args(FINETUNE_ARGS, rest)
        elif argv[0] == "make":
            for target in (a for a in argv[1:] if "=" not in a):
                assert re.search(rf"^{target}:", makefile, re.M), f"no make target {target!r}"
        elif argv[0] == "python" and argv[1].endswith(".py"):
            assert (ROOT / argv[1]).exists(), f"{argv[1]} does not exist"
        else:
            continue  # other engines' own commands (vllm, docker, llama-server…)
        checked += 1
    assert checked >= 10


def test_the_readme_kg_output_is_what_kg_show_prints(kg_path, capsys):
    from medsyn.cli import main

    shown = next(body for _, body in _blocks("console") if body.startswith("$ medsyn kg show M54"))
    assert main(["kg", "show", "M54", "--graph", str(kg_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for line in shown.splitlines()[1:]:
        if line.strip() == "...":
            continue
        assert line in printed, f"the README shows a line kg show does not print: {line!r}"


@pytest.mark.parametrize(
    "code",
    [body for before, body in _blocks("python") if not before.startswith("<!-- not run by tests")],
)
def test_readme_python_runs(code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
