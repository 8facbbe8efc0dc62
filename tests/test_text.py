from medsyn.text import clause_keys, contains_phrase, phrase_keys, symptom_coverage, tokenize


def test_inflection_and_derivation_meet():
    assert phrase_keys("болит голова") == phrase_keys("головная боль") == {"боль", "голова"}
    assert phrase_keys("боли в пояснице") == phrase_keys("поясничная боль")
    assert phrase_keys("кашляет") == phrase_keys("кашель")


def test_headache_is_not_dizziness():
    # prefix stemming would merge «голова» and «головокружение»; concept keys must not
    assert not phrase_keys("головная боль") <= phrase_keys("головокружение, боль в спине")


def test_function_words_are_dropped():
    assert phrase_keys("боль в спине") == {"боль", "спина"}
    assert tokenize("Т 37,5, АД 140/90") == ["т", "37,5", "ад", "140", "90"]


def test_symptom_coverage_hand_checked():
    note = "Жалобы на головные боли в затылке. Тошнит по утрам."
    assert symptom_coverage(["болит голова", "тошнота", "кашель"], note) == 1 / 3 * 2
    assert symptom_coverage([], note) == 0.0
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина не беспокоит.") == 1.0
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина не беспокоит.", scope="clause") == 0.0


def test_clause_matching():
    clauses = clause_keys("Боль в спине; тошнота.")
    assert contains_phrase(phrase_keys("боли в спине"), clauses)
    assert not contains_phrase(phrase_keys("тошнота со рвотой"), clauses)


def test_symptom_spans_mark_the_words_of_found_symptoms_only():
    from medsyn.text import symptom_spans

    note = "Жалобы на боли в пояснице, кашель. Головокружения нет."
    spans = symptom_spans(["боль в пояснице", "кашель", "головная боль", "тошнота"], note)
    assert [(note[a:b], s) for a, b, s in spans] == [
        ("боли", "боль в пояснице"),
        ("пояснице", "боль в пояснице"),
        ("кашель", "кашель"),
    ]  # «головная боль» is not found: «головокружение» is another complaint
    assert symptom_spans([], note) == [] and symptom_spans(["кашель"], "") == []
