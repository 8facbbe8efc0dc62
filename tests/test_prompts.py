import pytest

from medsyn.errors import ConfigError
from medsyn.prompts import (
    INSTRUCTION_WRITE,
    age_word,
    format_patient_input,
    get_prompt_builder,
    render_instruction,
)

TASK = {
    "icd10_code": "M54.5",
    "icd10_name": "Боль внизу спины",
    "example_note": "Боли в пояснице после подъёма тяжести, усиливаются при наклонах.",
    "symptoms": ["боль в спине", "онемение ног"],
    "sex": "F",
    "age": 42,
}


def test_example_guided_chat_messages():
    system, user = get_prompt_builder("example_guided").messages(TASK)
    assert system["role"] == "system" and "не копируй" in system["content"]
    assert user["role"] == "user"
    assert TASK["example_note"] in user["content"]
    assert "боль в спине, онемение ног" in user["content"]
    assert "другого пациента" in user["content"] and "женщина, 42 года" in user["content"]


def test_text_rendering_for_base_models():
    text = get_prompt_builder("example_guided").text(TASK)
    assert text.endswith("Запись врача:")
    instr = get_prompt_builder("instruction").text(TASK)
    assert instr == (
        f"### Задание: {INSTRUCTION_WRITE}\n"
        "### Вход: пациент, пол: женский, возраст: 42 года, жалобы: боль в спине, онемение ног\n"
        "### Ответ:"
    )


def test_instruction_with_output_and_age_words():
    assert render_instruction("x", "y", "note").endswith("### Ответ: note")
    assert [age_word(a) for a in (21, 22, 25, 11, 14, 101)] == ["год", "года", "лет", "лет", "лет", "год"]
    assert format_patient_input(None, None, ["кашель"]) == "пациент, жалобы: кашель"


def test_missing_columns_and_unknown_template():
    with pytest.raises(ConfigError, match="example_note"):
        get_prompt_builder("example_guided").messages({k: v for k, v in TASK.items() if k != "example_note"})
    with pytest.raises(ConfigError, match="unknown prompt template"):
        get_prompt_builder("nope")
