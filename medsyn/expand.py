"""Symptoms for codes that no real note covers, asked of a served model (``medsyn kg expand``).

For each code, one request asks an OpenAI-compatible endpoint for the code's typical complaints in Russian, one per
line, as an outpatient record states them. :func:`parse_complaints` turns the answer into a list (numbering, bullets
and explanations stripped, duplicates by concept keys dropped), and :meth:`medsyn.kg.MedicalKG.add_model_symptoms`
adds them to the graph: matched to the lexicon where a lexicon symptom has the same concept keys, else as new
symptom nodes, on edges marked ``source: llm:<served model>`` with a rank weight. Mined and asked edges never mix:
a code that real notes already give symptoms is left alone unless ``--force``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from medsyn.errors import MedsynError

__all__ = ["ExpandArgs", "complaints_prompt", "expand_graph", "parse_complaints"]

logger = logging.getLogger(__name__)

_SYSTEM = "Ты опытный врач-терапевт. Отвечай по-русски, кратко, без пояснений."
_ASK = (
    "Перечисли {top} типичных жалоб пациента с диагнозом «{name}» (код МКБ-10 {code}) так, как их записывают в "
    "амбулаторной карте. По одной жалобе в строке, без нумерации и пояснений."
)
_TEXT = "Типичные жалобы пациента с диагнозом «{name}» (код МКБ-10 {code}), по одной в строке:\n- "
_BULLET = re.compile(r"^\s*(?:[-*•·–—]+|\d+\s*[.)]|[a-zа-я]\))\s*", re.IGNORECASE)
_EXPLANATION = re.compile(r"\s+(?:[—–-]|\()\s*.*$|:.*$")


@dataclass
class ExpandArgs:
    """``medsyn kg expand``: symptoms from a served model for codes without real notes."""

    endpoint: list[str] = field(default_factory=list, metadata={"help": "OpenAI-compatible endpoint URL(s)"})
    codes: list[str] = field(default_factory=list, metadata={"help": "ICD-10 categories or codes to expand"})
    graph: str | None = field(default=None, metadata={"help": "graph file (default location)"})
    out: str | None = field(default=None, metadata={"help": "where to write the expanded graph (default: --graph)"})
    model: str | None = field(default=None, metadata={"help": "served model name (default: what the endpoint serves)"})
    top: int = field(default=8, metadata={"help": "how many complaints to ask for per code"})
    force: bool = field(default=False, metadata={"help": "expand codes that real notes already give symptoms"})
    timeout: float = field(default=60.0, metadata={"help": "seconds per request"})

    def __post_init__(self) -> None:
        if not self.endpoint or not self.codes:
            raise MedsynError("give --endpoint URL and --codes CODE [CODE …]")
        if not 1 <= self.top <= 30:
            raise MedsynError(f"--top must be between 1 and 30, got {self.top}")


def complaints_prompt(code: str, name: str, chat: bool, top: int = 8) -> Any:
    """The request for one code: chat messages, or a text prompt that a base model continues as a list."""
    if chat:
        return [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _ASK.format(top=top, name=name, code=code)},
        ]
    return _TEXT.format(name=name, code=code)


def parse_complaints(answer: str, top: int = 8) -> list[str]:
    """The complaints of a model's answer, in its order: one per line (or per comma on a one-line answer).

    Example:
        >>> parse_complaints("1. Давящая боль за грудиной — основной симптом\\n2) одышка\\n- Одышка.")
        ['давящая боль за грудиной', 'одышка']
    """
    from medsyn.text import phrase_keys

    lines = [line for line in answer.splitlines() if line.strip()]
    if len(lines) == 1 and "," in lines[0]:
        lines = lines[0].split(",")
    out, seen = [], set()
    for line in lines:
        item = _BULLET.sub("", line.strip())
        item = _EXPLANATION.sub("", item).split(",")[0].strip(" .;!«»\"'").lower()  # the complaint, not its detail
        if not item or len(item.split()) > 8 or not re.search("[а-яё]", item):
            continue
        keys = phrase_keys(item)
        if not keys or keys in seen:
            continue
        seen.add(keys)
        out.append(item)
        if len(out) == top:
            break
    return out


def expand_graph(args: ExpandArgs) -> dict[str, list[str]]:
    """Ask the endpoint for each code's complaints and add them to the graph; returns ``{code: symptoms added}``.

    Raises:
        MedsynError: an unknown code, a code real notes already cover (without ``force``), or a failed request.
    """
    from medsyn.backends import GenerationParams, backend_from_config
    from medsyn.generator import GeneratorConfig
    from medsyn.kg import load_graph
    from medsyn.paths import default_graph_path

    kg = load_graph(args.graph)
    codes = [kg.entry(c)["code"] for c in args.codes]  # an unknown code fails here, with the closest ones
    covered = [c for c in codes if kg.mined_symptoms(c)]
    if covered and not args.force:
        raise MedsynError(
            f"{', '.join(covered)} already {'has' if len(covered) == 1 else 'have'} symptoms mined from real notes; "
            "expand only codes that no note covers, or pass --force to add asked symptoms beside them"
        )
    config = GeneratorConfig(
        backend="endpoint", endpoint=args.endpoint, model=args.model or "auto", timeout=args.timeout, max_retries=2
    )
    backend = backend_from_config(config, template="example_guided")
    backend.load()
    params = GenerationParams(max_new_tokens=200, temperature=0.2, stop=["###"])
    served = backend.job_fields().get("served_model") or args.model or "served model"
    source = f"llm:{served if isinstance(served, str) else ','.join(served)}"
    added: dict[str, list[str]] = {}
    for code in codes:
        name = kg.entry(code)["name"]
        prompt = complaints_prompt(code, name, backend.chat, args.top)
        answer = backend.generate([prompt], params, seed=0)[0].text
        symptoms = parse_complaints(answer, args.top)
        if not symptoms:
            raise MedsynError(
                f"the endpoint's answer for {code} held no complaint list ({answer[:80]!r}…); try another model"
            )
        added[code] = kg.add_model_symptoms(code, symptoms, source)
        logger.info("%s %s: %d complaints from %s: %s", code, name, len(symptoms), source, ", ".join(symptoms))
    path = kg.save(args.out or args.graph or default_graph_path())
    logger.info("graph written to %s", path)
    return added
