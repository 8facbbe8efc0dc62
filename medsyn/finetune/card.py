"""The model card of a trained adapter: Hub metadata, training data, metrics and the command that reproduces it.

The card is rendered from the Jinja2 template ``medsyn/templates/adapter_card.md.j2``, shipped inside the package so
that an installed medsyn writes the same card as a checkout (``hub/README.md`` describes it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["render_model_card", "write_model_card", "card_metadata", "base_model_license"]

logger = logging.getLogger(__name__)


# An adapter is a derivative of its base model and is released under the base model's licence (Hub licence ids).
_BASE_LICENSES = {"gemma": "gemma", "llama": "other", "qwen": "apache-2.0", "mistral": "apache-2.0"}


def base_model_license(base_model: str) -> str:
    """The Hub licence id an adapter of ``base_model`` inherits (``other`` when unknown: check the base model)."""
    name = base_model.lower()
    return next((lic for key, lic in _BASE_LICENSES.items() if key in name), "other")


def card_metadata(base_model: str) -> dict[str, Any]:
    """The card's YAML header: what the Hub needs to list the adapter under its base model.

    The training data is a local folder built by ``medsyn data instructions``, so it is described in the card's
    text rather than in a ``datasets`` field (which the Hub reads as dataset ids).
    """
    return {
        "base_model": base_model,
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "language": ["ru"],
        "license": base_model_license(base_model),
        "tags": ["lora", "peft", "medical", "clinical-notes", "synthetic-data", "medsyn"],
    }


def _template() -> Any:
    from importlib.resources import files

    import jinja2

    source = files("medsyn").joinpath("templates", "adapter_card.md.j2").read_text(encoding="utf-8")
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(source)


def render_model_card(
    base_model: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    command: str | None = None,
    dataset: str | None = None,
    evaluation: dict[str, Any] | None = None,
) -> str:
    """The card's text (YAML header + Markdown).

    Args:
        base_model: the Hub id of the base model.
        config: the resolved training recipe.
        metrics: the training metrics (steps, tokens, losses).
        command: the command that reproduces the run.
        dataset: the training data (a Hub id or a local folder built by ``medsyn data instructions``).
        evaluation: prompt-following results before and after (see :mod:`medsyn.finetune.evaluate`).
    """
    import yaml

    header = yaml.safe_dump(card_metadata(base_model), allow_unicode=True, sort_keys=False)
    return _template().render(
        header=header.strip(),
        base_model=base_model,
        dataset=dataset or "",
        command=command or "",
        config_yaml=yaml.safe_dump(config, allow_unicode=True, sort_keys=False).strip(),
        metrics=metrics,
        metrics_json=json.dumps(metrics, indent=2, ensure_ascii=False),
        evaluation=evaluation,
    )


def write_model_card(out: str | Path, **kwargs: Any) -> Path:
    """Render the card with :func:`render_model_card` and write it to ``out/README.md``."""
    from medsyn.hub import redact

    path = Path(out) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact(render_model_card(**kwargs)), encoding="utf-8")
    return path
