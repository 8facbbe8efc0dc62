from medsyn.data import load_symptom_names
from medsyn.extract import LexiconExtractor, SymptomExtractor, build_lexicon, mine_complaint_phrases
from medsyn.text import phrase_keys


def test_extractor_keeps_the_most_specific_match():
    ex = LexiconExtractor(["головная боль", "боль", "тошнота", "боль в спине"])
    assert ex.extract("Болит голова, тошнит.") == ["головная боль", "тошнота"]
    assert isinstance(ex, SymptomExtractor)


def test_extractor_needs_all_words_in_one_clause():
    ex = LexiconExtractor(["боль в спине"])
    assert ex.extract("Боли в спине при ходьбе") == ["боль в спине"]
    assert ex.extract("Болит голова. Спина в норме") == []


def test_extractor_skips_denied_symptoms():
    ex = LexiconExtractor(["кашель", "головная боль", "боль в спине", "мокрота", "насморк"])
    assert ex.extract("Кашля нет. Головной боли нет, отрицает.") == []
    assert ex.extract("Болит голова. Спина не беспокоит.") == ["головная боль"]
    assert ex.extract("Кашель без мокроты, насморк") == ["кашель", "насморк"]


def test_mining_finds_recurring_complaints_and_skips_noise():
    notes = ["Жалобы на шум в ушах, лейкоциты 5.", "шум в ушах в течение недели", "Беспокоит шум в ушах. Лейкоциты 7."]
    mined = mine_complaint_phrases(notes, min_notes=3)
    assert list(mined.values()) == ["шум в ушах"]  # «лейкоциты» is no complaint: no symptom head
    assert mine_complaint_phrases(["стул в норме"] * 5, min_notes=3) == {}


def test_lexicon_is_seeded_and_extended(real_notes):
    seed = load_symptom_names()
    assert len(seed) == 141
    lexicon = build_lexicon(seed, [n["text"] for n in real_notes])
    assert {phrase_keys(s) for s in seed} <= {phrase_keys(name) for name in lexicon}
    assert len(lexicon) > len(seed)
    assert "шум в ушах" in lexicon
