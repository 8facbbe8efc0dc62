from medsyn.text import (
    affirmed_keys,
    clause_keys,
    contains_phrase,
    negation_cues,
    phrase_keys,
    symptom_coverage,
    tokenize,
)


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
    # without negation, note scope joins «болит» and «спина» from two sentences; clause scope does not
    note = "Болит голова. Спина болит, если долго сидит."
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина ноет.", scope="note") == 1.0
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина ноет.") == 0.0
    assert symptom_coverage(["боль в спине"], note) == 1.0


def test_negated_symptoms_are_not_covered():
    assert symptom_coverage(["кашель", "головная боль"], "Кашля нет. Головной боли нет, отрицает.") == 0.0
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина не беспокоит.") == 0.0
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина не беспокоит.", scope="note") == 0.0
    assert symptom_coverage(["боль в спине"], "Болит голова. Спина не беспокоит.", scope="note", negation=False) == 1.0
    assert symptom_coverage(["головная боль"], "Болит голова. Спина не беспокоит.") == 1.0
    for note in ("Температура отсутствует.", "Без температуры.", "Отрицает температуру.", "Температуры нет"):
        assert symptom_coverage(["температура"], note) == 0.0, note


def test_negation_scope_stops_at_the_segment():
    # «без» denies what follows it; a cue after the complaint denies its own comma segment only
    assert affirmed_keys("кашель без мокроты") == {"кашель"}
    assert affirmed_keys("кашель сухой, мокрота не отходит") == {"кашель", "сухой"}
    assert affirmed_keys("болит голова, ноги не болят") == {"боль", "голова"}
    # a cue that opens its segment carries over the list, until the clause affirms again
    assert affirmed_keys("отрицает кашель, насморк") == frozenset()
    assert affirmed_keys("нет аппетита, слабости") == frozenset()
    assert affirmed_keys("отрицает травмы, беспокоит кашель") == {"беспокоить", "кашель"}
    # a dash or a bullet ends the scope; a cue alone after a dash denies what precedes it
    assert affirmed_keys("не было менструации - приливы жара") == {"прилив", "жара"}
    assert affirmed_keys("скованность по утрам - нет") == frozenset()
    assert clause_keys("* отеки - нет * боли в суставах") == [{"боль", "сустав"}]
    assert affirmed_keys("Приливов нет Жалобы на боли в суставах") == {"жалоба", "боль", "сустав"}
    assert affirmed_keys("жалоб на момент осмотра нет Периодически боли") == {"периодически", "боль"}
    assert affirmed_keys("кашель не столь выраженный") >= {"кашель"}
    assert affirmed_keys("(не принимает таблетки), при мочеиспускании рези") == {"мочеиспускание", "резь"}


def test_pseudo_negation_affirms():
    # «не проходит», «не может уснуть», «не иррадиирует» qualify a complaint that is there
    assert symptom_coverage(["боль в спине"], "Боль в спине не проходит, не иррадиирует.") == 1.0
    assert {"уснуть", "мочь"} <= affirmed_keys("не может уснуть")
    assert "шум" in affirmed_keys("не отмечает уменьшения шума")
    assert negation_cues("Боль не проходит. Кашля нет, без мокроты, травмы отрицает.") == ["нет", "без", "отрицает"]


def test_clause_matching():
    clauses = clause_keys("Боль в спине; тошнота.")
    assert contains_phrase(phrase_keys("боли в спине"), clauses)
    assert not contains_phrase(phrase_keys("тошнота со рвотой"), clauses)
    assert clause_keys("Кашля нет. Тошнит.") == [{"тошнота"}]
    assert clause_keys("Кашля нет. Тошнит.", negation=False) == [{"кашель"}, {"тошнота"}]


def test_share_of_train_notes_with_a_cue(real_notes):
    # the README's figures: 20.0% of train notes hold a cue, 13.0% without the particle «не»
    cues = [negation_cues(n["text"]) for n in real_notes]
    assert sum(bool(c) for c in cues) == 938
    assert sum(any(cue != "не" for cue in c) for c in cues) == 612


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


def test_symptom_spans_follow_negation_and_clause_scope_as_coverage_does():
    from medsyn.text import symptom_coverage, symptom_spans

    note = "Кашля нет. Жалобы на головную боль. Боли. Сустав слева"
    symptoms = ["кашель", "головная боль", "боли в суставах"]
    spans = symptom_spans(symptoms, note)
    assert [(note[a:b], s) for a, b, s in spans] == [("головную", "головная боль"), ("боль", "головная боль")]
    assert len({s for _, _, s in spans}) / len(symptoms) == symptom_coverage(symptoms, note)
    assert symptom_spans(["боль в спине"], "Болит голова. Спина не беспокоит.") == []
