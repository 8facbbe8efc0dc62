"""Dataset cards rendered from the templates in ``medsyn/dataset_cards/`` with ``DatasetCardData``.

A card's YAML comes from :class:`huggingface_hub.DatasetCardData`; its body is a Jinja template filled with numbers
computed from the data, never typed by hand. The licence of generated notes follows the terms of the model that
wrote them (:func:`model_license`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["CARD_DIR", "ModelLicense", "model_license", "render_card", "size_category"]

CARD_DIR = Path(__file__).resolve().parents[1] / "dataset_cards"
"""The card templates, shipped inside the package."""


ModelLicense = dict[str, Any]
"""``{"license", "license_name", "license_link", "text"}``: the card fields and a sentence for the body."""

_GEMMA: ModelLicense = dict(
    license="gemma",
    license_name="Gemma Terms of Use",
    license_link="https://ai.google.dev/gemma/terms",
    text=(
        "The notes are outputs of Gemma 3 270M, so their use falls under the [Gemma Terms of Use]"
        "(https://ai.google.dev/gemma/terms) and its [Prohibited Use Policy]"
        "(https://ai.google.dev/gemma/prohibited_use_policy). Read the terms' definition of Model Derivatives before "
        "training a generative model on them."
    ),
)


def model_license(model: str | None) -> ModelLicense:
    """The licence that governs a model's outputs, read from the model's own metadata.

    The embedded default is Gemma 3 270M, whose weights ship under the Gemma Terms of Use. For another model the
    ``license`` of its model card is used: a local folder's ``README.md``, or the Hub card when online. A model
    whose terms cannot be read gets ``other`` and a sentence that asks the reader to check them.
    """
    from medsyn.models import DEFAULT_MODEL

    if model in (DEFAULT_MODEL, None, ""):
        return _GEMMA
    card_license = _card_license(model)
    if card_license == "gemma":
        return _GEMMA | {"text": _GEMMA["text"].replace("Gemma 3 270M", f"`{model}`")}
    if card_license:
        return dict(
            license=card_license,
            license_name=None,
            license_link=None,
            text=f"The notes are outputs of `{model}`; its model card states the licence `{card_license}`, "
            "whose terms for outputs apply.",
        )
    return dict(
        license="other",
        license_name=f"terms of {model}",
        license_link=None,
        text=f"The notes are outputs of `{model}`, whose licence could not be read here: check its terms for "
        "outputs before reuse.",
    )


def _card_license(model: str) -> str | None:
    from huggingface_hub import ModelCard

    try:
        local = Path(model) / "README.md"
        card = ModelCard.load(local) if local.exists() else ModelCard.load(model)
    except Exception as err:  # offline, unknown id, malformed card: the licence stays unknown
        logger.info("no licence read for %s (%s)", model, type(err).__name__)
        return None
    value = card.data.to_dict().get("license")
    return str(value) if value else None


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` label for ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def render_card(template: str, card_data: dict[str, Any], **variables: Any) -> str:
    """Render ``dataset_cards/<template>`` with ``card_data`` as its YAML header; returns the card's text."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(**{k: v for k, v in card_data.items() if v is not None})
    card = DatasetCard.from_template(data, template_path=str(CARD_DIR / template), **variables)
    return str(card)
