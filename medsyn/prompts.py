"""Prompt templates: the example-guided generation prompt and the instruction format for fine-tuning.

Templates are Jinja2 files in ``medsyn/templates``. Each :class:`PromptBuilder` declares the task columns it reads
(``inputs``) and renders to chat messages for chat models or to plain text for base models.

* ``example_guided``: the MedSyn paper's prompt. A system message with the rules; a user message with a real note
  of the same category as a style example and the symptoms to use, asking for a note about another patient with the
  same disease.
* ``instruction``: the fine-tuning format ``### Задание: … ### Вход: пациент, пол, возраст, жалобы … ### Ответ:``.
* ``few_shot``: the instruction format with ``k`` real notes of the same code or category before it, each as a
  worked example (its complaints, as the graph's extractor reads them, as the ``### Вход``), so that a base model
  or an adapter sees how notes of this disease are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from medsyn.errors import ConfigError

__all__ = [
    "INSTRUCTION_WRITE",
    "INSTRUCTION_CONTINUE",
    "PromptBuilder",
    "get_prompt_builder",
    "PROMPT_BUILDERS",
    "format_patient_input",
    "render_instruction",
    "age_word",
    "sex_word",
]

INSTRUCTION_WRITE = "Напиши текст анамнеза, составленного врачом по итогам приема пациента."
INSTRUCTION_CONTINUE = "Продолжи анамнез, составленный врачом по итогам приема пациента."
ANSWER_MARKER = "### Ответ:"


@cache
def _template(name: str):
    import jinja2

    source = files("medsyn").joinpath("templates", name).read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    return env.from_string(source)


def age_word(age: int) -> str:
    """The Russian word for 'years' that agrees with ``age`` (год, года, лет)."""
    if 11 <= age % 100 <= 14:
        return "лет"
    return {1: "год", 2: "года", 3: "года", 4: "года"}.get(age % 10, "лет")


def sex_word(sex: str) -> str:
    """``"M"``/``"F"`` as the Russian noun used in prompts."""
    return {"M": "мужчина", "F": "женщина"}.get(sex, "пациент")


def format_patient_input(sex: str | None, age: int | None, symptoms: list[str]) -> str:
    """The ``### Вход`` line: ``пациент, пол: женский, возраст: 45 лет, жалобы: головная боль, тошнота``."""
    parts = ["пациент"]
    if sex in ("M", "F"):
        parts.append("пол: " + ("мужской" if sex == "M" else "женский"))
    if age is not None:
        parts.append(f"возраст: {age} {age_word(age)}")
    parts.append("жалобы: " + ", ".join(symptoms))
    return ", ".join(parts)


def render_instruction(instruction: str, input: str, output: str | None = None) -> str:
    """Render the fine-tuning format; without ``output`` it ends at ``### Ответ:`` as a generation prompt."""
    text = _template("instruction.j2").render(instruction=instruction, input=input, output=output).rstrip("\n")
    return text if output is not None else text.rstrip()


@dataclass(frozen=True)
class PromptBuilder:
    """Renders one template from a task row.

    Attributes:
        name: the builder's name, as used by ``--template``.
        inputs: the task columns it reads.
    """

    name: str
    inputs: tuple[str, ...]

    def _check(self, task: Mapping[str, Any]) -> None:
        missing = [c for c in self.inputs if c not in task or task[c] is None]
        if missing:
            raise ConfigError(f"prompt '{self.name}' needs task column(s) {missing}; the task has {sorted(task)}")

    def messages(self, task: Mapping[str, Any]) -> list[dict[str, str]]:
        """Chat messages (``system`` + ``user``) for chat models."""
        self._check(task)
        if self.name == "example_guided":
            ctx = dict(task, sex_word=sex_word(task["sex"]), age_word=age_word(int(task["age"])))
            return [
                {"role": "system", "content": _template("example_guided.system.j2").render().strip()},
                {"role": "user", "content": _template("example_guided.user.j2").render(**ctx).strip()},
            ]
        return [{"role": "user", "content": self.text(task)}]

    def text(self, task: Mapping[str, Any]) -> str:
        """Plain text for base models: the prompt ends where the note should begin."""
        self._check(task)
        if self.name in ("instruction", "few_shot"):
            patient = format_patient_input(task["sex"], int(task["age"]), list(task["symptoms"]))
            shots = [
                render_instruction(INSTRUCTION_WRITE, format_patient_input(None, None, ex["symptoms"]), ex["text"])
                for ex in (task["examples"] if self.name == "few_shot" else [])
            ]
            return "\n\n".join([*shots, render_instruction(INSTRUCTION_WRITE, patient)])
        system, user = (m["content"] for m in self.messages(task))
        return f"{system}\n\n{user}\n\nЗапись врача:"


PROMPT_BUILDERS: dict[str, PromptBuilder] = {
    "example_guided": PromptBuilder(
        "example_guided", ("icd10_code", "icd10_name", "example_note", "symptoms", "sex", "age")
    ),
    "instruction": PromptBuilder("instruction", ("symptoms", "sex", "age")),
    "few_shot": PromptBuilder("few_shot", ("symptoms", "sex", "age", "examples")),
}


def get_prompt_builder(name: str) -> PromptBuilder:
    """The builder called ``name``, or an error listing the available ones."""
    try:
        return PROMPT_BUILDERS[name]
    except KeyError as err:
        raise ConfigError(f"unknown prompt template {name!r}; choose one of {sorted(PROMPT_BUILDERS)}") from err
