"""Dataclass arguments with YAML recipes and command-line overrides.

Every script and CLI command declares its options as dataclasses whose fields carry ``metadata={"help": ...}``.
:func:`parse_args` builds an ``argparse`` parser from them, reads an optional ``--config recipe.yaml`` (a flat
mapping of field names, grouped by comments), and lets any flag override the recipe. :func:`dump_config` gives the
resolved configuration back as a plain dict, which runs save beside their outputs so they can be reproduced.

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Args:
    ...     n: int = field(default=10, metadata={"help": "number of notes"})
    >>> (args,) = parse_args([Args], ["--n", "3"])
    >>> args.n
    3
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsyn.errors import ConfigError

__all__ = ["parse_args", "dump_config", "load_yaml", "save_config", "build_parser", "parse_bool", "plain"]

_RST_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj):`~?([^`]+)`")


def plain(text: str | None) -> str | None:
    """Docstring text as a terminal shows it: ``literal`` and :func:`name` become literal and name."""
    if text is None:
        return None
    return _RST_ROLE.sub(r"\1", text).replace("``", "")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert a YAML or CLI value to the field's declared type, with a clear error."""
    base, optional = _unwrap_optional(tp)
    if optional and isinstance(value, str) and value.strip().lower() in ("none", "null"):
        value = None  # how a flag says "no value" for a field that may have none
    if value is None:
        if optional:
            return None
        raise ConfigError(f"field '{name}' may not be null; give a value of type {getattr(base, '__name__', base)}")
    origin = typing.get_origin(base)
    try:
        if origin in (list, tuple, Sequence) or base in (list, tuple):
            (item_tp,) = typing.get_args(base)[:1] or (str,)
            items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v != ""]
            return [_coerce(name, item_tp, v) for v in items]
        if origin is dict or base is dict:
            if not isinstance(value, dict):
                raise ConfigError(f"field '{name}' expects a mapping, got {value!r}")
            return dict(value)
        if typing.get_origin(base) is typing.Literal:
            choices = typing.get_args(base)
            if value not in choices:
                raise ConfigError(f"field '{name}' must be one of {list(choices)}, got {value!r}")
            return value
        if base is bool:
            return parse_bool(value)
        if base in (int, float, str):
            return base(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"field '{name}' expects {getattr(base, '__name__', base)}, got {value!r}") from err
    return value


def build_parser(
    dataclass_types: Sequence[type], description: str | None = None, prog: str | None = None
) -> argparse.ArgumentParser:
    """An argparse parser with one flag per dataclass field (values are coerced later, after the recipe)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=plain(description), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=str, default=None, help="YAML recipe; flags given here override it")
    seen: set[str] = set()
    for dc in dataclass_types:
        group = parser.add_argument_group(dc.__name__)
        hints = typing.get_type_hints(dc)
        for f in dataclasses.fields(dc):
            if not f.init or f.name in seen:
                continue
            seen.add(f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            base, _ = _unwrap_optional(hints[f.name])
            kwargs: dict[str, Any] = {
                "default": argparse.SUPPRESS,
                "help": plain(f.metadata.get("help", "")) + f" (default: {default})",
            }
            if base is bool:
                kwargs.update(nargs="?", const="true")
            elif typing.get_origin(base) in (list, tuple):
                # repeatable and multi-valued alike: --endpoint A --endpoint B == --endpoint A B
                kwargs.update(nargs="*", action="extend")
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
            group.add_argument(f"--{f.name}", **kwargs)
    return parser


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe as a flat mapping, with an error that names the file when it is not one."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; pass the path of a YAML recipe, e.g. recipes/…/*.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of field: value, got {type(data).__name__}")
    return data


def parse_args(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None = None,
    description: str | None = None,
    config: dict[str, Any] | None = None,
    prog: str | None = None,
) -> tuple[Any, ...]:
    """Build the dataclasses from defaults, then a YAML recipe, then command-line flags.

    Args:
        dataclass_types: the argument dataclasses, in order.
        argv: the arguments to parse (``sys.argv[1:]`` when ``None``).
        description: the parser's description, shown by ``--help``.
        config: values to apply before the recipe and flags (used by callers that already hold a mapping).
        prog: the program name shown by ``--help`` and in usage errors (e.g. ``"medsyn generate"``).

    Returns:
        One instance per dataclass, in the same order.

    Raises:
        ConfigError: for unknown keys in the recipe, or values of the wrong type.
    """
    parser = build_parser(dataclass_types, description, prog)
    namespace = parser.parse_args(argv)
    values: dict[str, Any] = dict(config or {})
    if namespace.config:
        values.update(load_yaml(namespace.config))
    values.update({k: v for k, v in vars(namespace).items() if k != "config"})
    known = {f.name for dc in dataclass_types for f in dataclasses.fields(dc)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; valid fields are: {', '.join(sorted(known))}")
    out = []
    for dc in dataclass_types:
        hints = typing.get_type_hints(dc)
        kwargs = {
            f.name: _coerce(f.name, hints[f.name], values[f.name]) for f in dataclasses.fields(dc) if f.name in values
        }
        out.append(dc(**kwargs))
    return tuple(out)


def dump_config(*objs: Any) -> dict[str, Any]:
    """The resolved fields of one or more dataclass instances as one JSON/YAML-serialisable dict."""
    merged: dict[str, Any] = {}
    for obj in objs:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            merged[f.name] = str(value) if isinstance(value, Path) else value
    return merged


def save_config(path: str | Path, *objs: Any) -> Path:
    """Write the resolved config of ``objs`` to a YAML file and return its path."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dump_config(*objs), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
