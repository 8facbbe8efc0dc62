import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from medsyn.config import dump_config, parse_args, save_config
from medsyn.errors import ConfigError


@dataclass
class A:
    n: int = field(default=10, metadata={"help": "count"})
    name: str | None = field(default=None, metadata={"help": "name"})
    flag: bool = field(default=False, metadata={"help": "flag"})
    codes: list[str] = field(default_factory=list, metadata={"help": "codes"})


@dataclass
class B:
    rate: float = field(default=0.5, metadata={"help": "rate"})


def test_defaults_recipe_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# Data\nn: 5\ncodes: [M54, J06]\nrate: 0.1\n", encoding="utf-8")
    a, b = parse_args([A, B], ["--config", str(recipe), "--n", "7", "--flag"])
    assert (a.n, a.codes, a.flag, b.rate) == (7, ["M54", "J06"], True, 0.1)
    a, b = parse_args([A, B], ["--codes", "M54", "N92", "--flag", "false", "--name", "x"])
    assert (a.codes, a.flag, a.name, b.rate) == (["M54", "N92"], False, "x", 0.5)


def test_round_trip_through_yaml(tmp_path):
    a, b = parse_args([A, B], ["--n", "3", "--codes", "M54"])
    path = save_config(tmp_path / "c.yaml", a, b)
    assert parse_args([A, B], ["--config", str(path)]) == (a, b)
    assert dump_config(a, b) == {"n": 3, "name": None, "flag": False, "codes": ["M54"], "rate": 0.5}


def test_bad_values_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="field 'n' expects int, got 'many'"):
        parse_args([A], ["--n", "many"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        parse_args([A], ["--config", str(recipe)])
    with pytest.raises(ConfigError, match="does not exist"):
        parse_args([A], ["--config", str(tmp_path / "missing.yaml")])


def test_import_medsyn_stays_light():
    code = (
        "import sys, medsyn, medsyn.kg, medsyn.sampling, medsyn.prompts, medsyn.pipeline, medsyn.generator, medsyn.job, "
        "medsyn.writer, medsyn.backends.endpoint, medsyn.backends.transformers, medsyn.eval, medsyn.cli;"
        "heavy = ('torch', 'transformers', 'gradio', 'peft', 'datasets', 'accelerate', 'sklearn', 'matplotlib');"
        "heavy = [m for m in heavy if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def _cli_dataclasses():
    from medsyn.backends import GenerationParams
    from medsyn.eval.commands import ClassifyArgs, ConsistencyArgs, QualityArgs
    from medsyn.finetune.args import FINETUNE_ARGS, InstructionDataArgs
    from medsyn.finetune.evaluate import EvalArgs
    from medsyn.pipeline import GenerateConfig
    from medsyn.release.kg import KGReleaseArgs
    from medsyn.release.notes import DatasetReleaseArgs
    from medsyn.serving.serve import ServeConfig
    from medsyn.space.core import SpaceConfig

    return [
        GenerateConfig,
        GenerationParams,
        ServeConfig,
        *FINETUNE_ARGS,
        InstructionDataArgs,
        EvalArgs,
        ClassifyArgs,
        QualityArgs,
        ConsistencyArgs,
        DatasetReleaseArgs,
        KGReleaseArgs,
        SpaceConfig,
    ]


def _parse_one(dc, name, value):
    import dataclasses

    from medsyn.config import parse_args

    missing = dataclasses.MISSING
    required = [
        f"--{f.name}=x"
        for f in dataclasses.fields(dc)
        if f.init and f.default is missing and f.default_factory is missing  # type: ignore[misc]
    ]
    required += ["--endpoint", "http://127.0.0.1:9"] if value == "endpoint" else []
    (obj,) = parse_args([dc], [*[r for r in required if not r.startswith(f"--{name}=")], f"--{name}", value])
    return getattr(obj, name)


def test_every_optional_field_takes_none_and_null_from_the_command_line():
    import dataclasses
    import typing

    from medsyn.config import _unwrap_optional

    checked = 0
    for dc in _cli_dataclasses():
        hints = typing.get_type_hints(dc)
        for f in dataclasses.fields(dc):
            if f.init and _unwrap_optional(hints[f.name])[1]:
                for word in ("none", "null", "None"):
                    assert _parse_one(dc, f.name, word) is None, (dc.__name__, f.name, word)
                checked += 1
    assert checked >= 15


# Every value a help text names, as the user would type it, and what the field then holds.
HELP_VALUES = [
    ("DataArguments", "eval_split", "none", None),  # "split for the eval loss (none to skip)"
    ("TrainArguments", "resume_from_checkpoint", "auto", "auto"),
    ("TrainArguments", "mixed_precision", "no", "no"),
    ("TrainArguments", "mixed_precision", "bf16", "bf16"),
    ("TrainArguments", "eval_steps", "0", 0),
    ("TrainArguments", "save_steps", "0", 0),
    ("TrainArguments", "save_total_limit", "0", 0),
    ("TrainArguments", "eval_generate_tasks", "0", 0),
    ("ModelArguments", "dtype", "float32", "float32"),
    ("ModelArguments", "attn_implementation", "eager", "eager"),
    ("GenerateConfig", "adapter", "none", "none"),
    ("GenerateConfig", "adapter", "auto", "auto"),
    ("GenerateConfig", "template", "example_guided", "example_guided"),
    ("GenerateConfig", "template", "instruction", "instruction"),
    ("GenerateConfig", "prompt_format", "text", "text"),
    ("GenerateConfig", "dtype", "bfloat16", "bfloat16"),
    ("GenerateConfig", "backend", "endpoint", "endpoint"),
    ("GenerateConfig", "engine", "llama.cpp", "llama.cpp"),
    ("GenerateConfig", "max_attempts", "1", 1),
    ("GenerateConfig", "consistency_top_k", "0", 0),
    ("GenerationParams", "top_k", "0", 0),
    ("GenerationParams", "temperature", "0", 0.0),
    ("GenerationParams", "repetition_penalty", "1.0", 1.0),
    ("ServeConfig", "adapter", "auto", "auto"),
    ("ServeConfig", "cb_num_blocks", "0", 0),
    ("ServeConfig", "cb_max_batch_tokens", "0", 0),
    ("EvalArgs", "temperature", "0", 0.0),
    ("ClassifyArgs", "settings", "paper", ["paper"]),
    ("ClassifyArgs", "model", "linear", "linear"),
    ("QualityArgs", "self_bleu_sample", "0", 0),
    ("SpaceConfig", "adapter", "none", "none"),
]


@pytest.mark.parametrize("dc_name, name, value, expected", HELP_VALUES)
def test_every_value_a_help_text_names_works_as_typed(dc_name, name, value, expected):
    import dataclasses

    (dc,) = [d for d in _cli_dataclasses() if d.__name__ == dc_name]
    (field,) = [f for f in dataclasses.fields(dc) if f.name == name]
    help_text = field.metadata["help"]
    assert value in help_text or name in ("backend", "engine", "temperature", "repetition_penalty"), help_text
    assert _parse_one(dc, name, value) == expected
