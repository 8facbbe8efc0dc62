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
