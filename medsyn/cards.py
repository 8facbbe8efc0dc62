"""Dataset cards rendered from the templates in ``dataset_cards/`` with ``DatasetCardData``.

A card's YAML comes from :class:`huggingface_hub.DatasetCardData`; its body is a Jinja template filled with numbers
computed from the data, never typed by hand. The licence of generated notes follows the terms of the model that
wrote them (:func:`model_license`).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["CARD_DIR", "CardStats", "ModelLicense", "model_license", "notes_card", "render_card", "size_category"]

CARD_DIR = Path(__file__).resolve().parent / "dataset_cards"
"""The card templates, shipped inside the package (in the repository, a link to the top-level ``dataset_cards/``)."""


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


# -- the card of a notes dataset (``dataset_cards/ru-notes.md``): a generated folder and a release alike ------------


EXAMPLE_FIELDS = ("id", "icd10_code", "icd10_name", "category", "symptoms", "sex", "age", "example_id", "note")
EXAMPLE_FIELDS += ("template", "model", "adapter", "symptom_coverage", "kept", "filter_reasons", "copy_score")


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _quality_rows(report: dict[str, Any] | None) -> dict[str, str] | None:
    if not report:
        return None
    syn, real = report["realism"]["synthetic"], report["realism"]["real"]
    copy, prompt = report["copying"], report["prompt_following"]
    rvr = copy.get("real_vs_real", {})
    return {
        "coverage_mean": _fmt(prompt.get("mean_coverage")),
        "share_full": _fmt(prompt.get("share_full")),
        "distinct2": _fmt(syn.get("distinct_2")),
        "real_distinct2": _fmt(real.get("distinct_2")),
        "self_bleu": _fmt(syn.get("self_bleu")),
        "real_self_bleu": _fmt(real.get("self_bleu")),
        "copy_mean": _fmt(copy["train"]["copy_score_mean"]),
        "copy_max": _fmt(copy["train"]["copy_score_max"]),
        "real_copy_mean": _fmt(rvr.get("copy_score_mean")),
        "real_copy_max": _fmt(rvr.get("copy_score_max")),
        "near_copies": str(copy["train"]["near_copies"]),
        "real_near_copies": str(rvr.get("near_copies", "—")),
    }


def _filter_line(spec: dict[str, Any]) -> str:
    """What the card says about the filter: symptoms and copying, then consistency when it ran."""
    filt = spec.get("filter", {})
    if not filt.get("on", True):
        return "off: every note is kept."
    line = (
        f"kept when the note uses at least {filt.get('min_symptom_coverage', 0):.0%} of the requested symptoms and "
        f"shares less than {filt.get('max_copy_score', 0):.0%} of its word 3-grams with any real note"
        + (
            ", and states no clinical contradiction (the other sex's organs, vital signs outside physiological "
            "ranges, age-bound terms at the wrong age)"
            if spec.get("clinical_filter")
            else ""
        )
        + f"; up to {spec.get('max_attempts', 1)} attempts per task"
        + (
            f", each of {spec['best_of']} candidates, of which the kept one with the highest symptom coverage × "
            "label fidelity × realism was written"
            if spec.get("best_of", 1) > 1
            else ""
        )
    )
    if not spec.get("consistency_top_k"):
        return line + "."
    line += (
        f"; and only when a linear classifier trained on real notes alone ranks the note's code among its top "
        f"{spec['consistency_top_k']} (consistency filtering"
    )
    if spec.get("consistency_post_hoc"):
        line += (
            ", applied after generation with `medsyn eval consistency`: a note it turned down was not written again"
        )
    return line + ")."


class CardStats:
    """What the card of a notes folder says of its rows, gathered one row at a time.

    A folder's dataset step streams 100,000 rows into parquet; keeping them all for the card would grow its memory
    with ``--n``. Counters give the same medians and ranges as the full lists, and only the example row is kept.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.ages: Counter[int] = Counter()
        self.note_chars: Counter[int] = Counter()
        self.n_symptoms: tuple[int, int] | None = None  # (min, max) over kept and rejected
        self.templates: set[str] = set()
        self.categories: set[str] = set()
        self.codes: set[str] = set()
        self.female = 0
        self.first_kept: dict[str, Any] | None = None
        self.shown: dict[str, Any] | None = None  # the first kept row that uses every requested symptom

    @classmethod
    def from_groups(cls, groups: dict[str, list[dict[str, Any]]]) -> CardStats:
        stats = cls()
        for group, rows in groups.items():
            for row in rows:
                stats.add(row, group)
        return stats

    def add(self, row: dict[str, Any], group: str) -> None:
        """Count one row of config ``group`` (``default``, ``rejected`` or ``failed``)."""
        self.counts[group] += 1
        if group == "failed":
            return
        n = len(row["symptoms"])
        low, high = self.n_symptoms or (n, n)
        self.n_symptoms = (min(low, n), max(high, n))
        if row.get("template"):
            self.templates.add(row["template"])
        if group != "default":
            return
        self.ages[row["age"]] += 1
        self.note_chars[len(row["note"])] += 1
        self.categories.add(row["category"])
        self.codes.add(row["icd10_code"])
        self.female += row["sex"] == "F"
        example = {k: row[k] for k in EXAMPLE_FIELDS if k in row}
        if self.first_kept is None:
            self.first_kept = example
        if self.shown is None and (row.get("symptom_coverage") or 0) >= 1.0:
            self.shown = example

    @property
    def kept(self) -> int:
        return self.counts["default"]


def _median(counts: Counter[int]) -> float:
    """``statistics.median`` of the values a counter counts (0 when it is empty)."""
    total = sum(counts.values())
    if not total:
        return 0
    ordered = sorted(counts)

    def kth(k: int) -> int:  # the k-th smallest value, 0-based
        seen = 0
        for value in ordered:
            seen += counts[value]
            if seen > k:
                return value
        return ordered[-1]

    if total % 2:
        return kth(total // 2)
    return (kth(total // 2 - 1) + kth(total // 2)) / 2


def notes_card(
    spec: dict[str, Any],
    groups: dict[str, list[dict[str, Any]]] | CardStats,
    meta: dict[str, Any],
    *,
    title: str = "medsyn synthetic Russian clinical notes",
    load_id: str = "PATH_OR_HUB_ID",
    reproduce: str = "run `medsyn generate --config medsyn_config.yaml` in this folder.",
    job_fingerprint: str = "",
    plots: list[str] | None = None,
    quality: dict[str, Any] | None = None,
    reader: str | None = None,
    classify: dict[str, Any] | None = None,
    near_copies_dropped: list[str] | None = None,
    identifiers_dropped: list[str] | None = None,
    cost: dict[str, Any] | None = None,
) -> str:
    """The card's text: YAML from ``DatasetCardData``, body from the template, numbers from ``groups``.

    Args:
        spec: the job spec (``medsyn_job.json``'s ``job``).
        groups: rows per config (``default``, ``rejected``, ``failed``).
        meta: ``{"configs", "dataset_info"}`` from :func:`medsyn.writer.configs_meta`.
        load_id: what ``load_dataset`` is given in the card's snippet.
        reproduce: the sentence that says how to make more notes the same way.
        plots / quality: the release's plots and ``medsyn eval quality`` report.
        reader: the markdown table of what a reader sees (:func:`medsyn.eval.reader.reader_table`).
        classify: the downstream tables, ``{"run", "table", "gains"}`` in markdown.
        cost: what the runs spent, ``medsyn_job.json``'s ``throughput`` (see :mod:`medsyn.sharding`).
    """
    from medsyn.models import public_name

    stats = groups if isinstance(groups, CardStats) else CardStats.from_groups(groups)
    model = public_name(spec.get("served_model") or spec.get("model"))
    lic = model_license(model if spec.get("backend") != "endpoint" else spec.get("served_model") or model)
    ages = stats.ages or Counter([0])
    n_symptoms = stats.n_symptoms or (0, 0)
    templates = sorted(stats.templates) or [spec.get("template")]
    # the example row: the first kept note that uses every requested symptom (else the first kept note)
    example = stats.shown or stats.first_kept or {}
    real = _real_notes(spec)
    adapter = spec.get("adapter")
    model_line = f"`{model}`" + (
        f" with the LoRA adapter `{adapter}` (sha256 `{spec.get('adapter_sha256')}`)" if adapter else ""
    )
    card_data = {
        **{k: lic[k] for k in ("license", "license_name", "license_link")},
        "language": ["ru"],
        "multilinguality": ["monolingual"],
        "pretty_name": title,
        "task_categories": ["text-generation", "text-classification"],
        "size_categories": [size_category(stats.kept)],
        "tags": ["synthetic", "medical", "clinical", "icd-10", "russian", "medsyn"],
        "source_datasets": ["extended|rumedtop3"] if real["packaged"] else ["original"],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        **meta,
    }
    gen = spec.get("generation", {})
    filt = spec.get("filter", {})
    return render_card(
        "ru-notes.md",
        card_data,
        title=title,
        load_id=load_id,
        medsyn_version=spec.get("medsyn_version"),
        counts={k: stats.counts[k] for k in ("default", "rejected", "failed")},
        style_example="example_guided" in templates or "few_shot" in templates,
        templates=", ".join(f"`{t}`" for t in templates),
        has_copy_score=bool(stats.first_kept and "copy_score" in stats.first_kept),
        example_row=json.dumps(example, ensure_ascii=False, indent=2),
        min_coverage=f"{filt.get('min_symptom_coverage', 0):.0%}" if filt.get("on", True) else "any share",
        n_categories=len(stats.categories),
        n_codes=len(stats.codes),
        symptom_range=f"{n_symptoms[0]}-{n_symptoms[1]}",
        share_female=f"{stats.female / max(stats.kept, 1):.0%}",
        age_range=f"{min(ages)}-{max(ages)}",
        age_median=int(_median(ages)),
        chars_median=int(_median(stats.note_chars)),
        real_chars_median=int(real.pop("chars_median")),
        real=real,
        near_copies_dropped=near_copies_dropped or [],
        identifiers_dropped=identifiers_dropped or [],
        plots=plots or [],
        spec=spec,
        model_line=model_line,
        model_short=f"`{model}`",
        backend_line=_backend_line(spec),
        sampling=", ".join(f"{k} {v!r}" for k, v in gen.items()) or "—",
        filter_line=_filter_line(spec),
        job_fingerprint=job_fingerprint,
        reproduce=reproduce,
        quality=_quality_rows(quality),
        reader=reader,
        classify=classify,
        license_text=lic["text"],
        cost=_cost_line(cost),
    )


def _backend_line(spec: dict[str, Any]) -> str:
    """How the card says the model was run."""
    if spec.get("backend") != "endpoint":
        return "run in-process with transformers"
    return "served through an OpenAI-compatible endpoint" + (f" ({spec['engine']})" if spec.get("engine") else "")


def _real_notes(spec: dict[str, Any]) -> dict[str, Any]:
    """How the card names the real notes behind a job: RuMedTop3's splits, or a user's notes by the name given."""
    own = spec.get("notes")
    if own:
        name = f"«{own.get('name') or 'private notes'}»"
        return {
            "packaged": False,
            "note": f"real note of {name}",
            "scope": "",
            "notes": f"real notes of {name}",
            "source": f"the notes of {name}",
            "against": f"the notes of {name}",
            "mention": f"the real notes of {name}",
            "licence": f"{name}, the notes of whoever made this dataset; they do not ship, only notes generated from them",
            "chars_median": own.get("chars_median", 0),
        }
    from medsyn.data import load_rumedtop3

    return {
        "packaged": True,
        "note": "real RuMedTop3 note",
        "scope": " (train and dev)",
        "notes": "real RuMedTop3 train notes",
        "source": "RuMedTop3 train notes",
        "against": "RuMedTop3 train (dev as the real-vs-real reference)",
        "mention": "real RuMedTop3 notes",
        "licence": "RuMedTop3 (RuMedBench, Apache-2.0)",
        "chars_median": statistics.median(len(n["text"]) for n in load_rumedtop3("train")),
    }


def _cost_line(cost: dict[str, Any] | None) -> dict[str, Any] | None:
    """The numbers of the card's cost line, formatted; ``None`` when the folder's runs were not measured."""
    total = (cost or {}).get("total")
    if not total or not total.get("runs"):
        return None
    hours, rest = divmod(int(round(total["wall_s"])), 3600)
    wall = (
        f"{hours} h {rest // 60} min" if hours else (f"{rest // 60} min {rest % 60} s" if rest >= 60 else f"{rest} s")
    )
    return {
        **{
            k: f"{int(total.get(k, 0)):,}"
            for k in ("notes", "requests", "retries", "tries", "tokens_in", "tokens_out")
        },
        "failed": int(total.get("failed", 0)),
        "runs": int(total["runs"]),
        "shards": len(cost.get("per_shard", {})),
        "wall": wall,
        "rate": f"{total['notes_per_wall_s']:.3g}" if total.get("notes_per_wall_s") else "—",
    }
