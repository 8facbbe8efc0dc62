"""medsyn.corpus: one reader of real notes from packaged splits, files, folders and Hub ids, with its report."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from medsyn.corpus import DEFAULT_NOTES, CorpusReport, NotesArgs, load_corpus, notes_fingerprint
from medsyn.errors import MedsynError

FIXTURE = Path(__file__).parent / "fixtures" / "own_notes.csv"
NOTES = [
    {"text": "Жалобы на боли в пояснице при наклоне, онемение в стопе.", "code": "M54.5"},
    {"text": "Жалобы на кашель, насморк и боль в горле три дня.", "code": "J06.9"},
    {"text": "Жалобы на давящую боль за грудиной и одышку при ходьбе.", "code": "I20.8"},
]


@pytest.fixture(scope="module")
def own():
    return load_corpus(FIXTURE, log=False)


def _by_id(corpus):
    return {n["id"]: n for n in corpus.notes}


# -- the fixture: a clinic's CSV with Russian columns, a BOM and every kind of problem ---------------------------------
def test_fixture_is_what_the_tests_assume():
    """The fixture is a ';'-separated UTF-8 file with a byte-order mark and the Russian header ИД;Пол;Возраст;Жалобы;МКБ."""
    data = FIXTURE.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header = data.decode("utf-8-sig").splitlines()[0]
    assert header == "ИД;Пол;Возраст;Жалобы;МКБ"


def test_russian_columns_bom_and_sniffed_semicolon_are_read(own):
    """Text, code, id, sex and age come from the Russian columns of a BOM-prefixed ';' file, sex as M/F, age as int."""
    notes = _by_id(own)
    first = notes["P0001"]
    assert first["text"].startswith("Жалобы: холодный пот, одышка")
    assert first["code"] == "I21.0"
    assert first["sex"] == "M" and first["age"] == 67
    assert notes["P0002"]["sex"] == "F" and notes["P0002"]["age"] == 38
    assert all(isinstance(n["age"], int) for n in own.notes)
    assert all(set(n) == {"id", "text", "code", "sex", "age"} for n in own.notes)


def test_full_codes_are_kept_and_commas_become_dots(own):
    """Codes keep their precision (I21.0 stays I21.0, not I21), and «I21,0» is read as I21.0."""
    notes = _by_id(own)
    assert notes["P0007"]["code"] == "I21.0"  # written «I21,0» in the file
    assert notes["P0014"]["code"] == "I21.4"  # written «I21,4»
    assert own.report.per_code == {
        "I21.0": 10,
        "I21.4": 9,
        "I50.0": 9,
        "M54.5": 9,
        "J45.0": 8,
        "I50.1": 6,
        "I20.0": 1,
    }


def test_skipped_rows_are_counted_and_named(own):
    """Empty text, missing code, duplicate id and duplicate text are skipped, each named by its id."""
    report = own.report
    assert report.rows == 57 and report.kept == 52 == len(own.notes)
    assert report.skipped == {
        "an empty text": ["P0053"],
        "no code": ["P0054"],
        "a duplicate id": ["P0005"],
        "a duplicate text": ["P0056"],
    }
    notes = _by_id(own)
    assert "P0053" not in notes and "P0054" not in notes and "P0056" not in notes
    # the first P0005 (an I21.0 note) is kept, the second (I21.4) is the duplicate
    assert notes["P0005"]["code"] == "I21.0"
    assert len({n["text"] for n in own.notes}) == len(own.notes)


def test_unknown_codes_are_listed_with_the_closest_codes(own):
    """I21.7 is not in ICD-10: its note is left out and the report names the valid codes nearest to it."""
    report = own.report
    assert list(report.unknown_codes) == ["I21.7"]
    closest = report.unknown_codes["I21.7"]
    assert closest and all(c.startswith("I21") for c in closest)
    assert "P0057" not in _by_id(own)
    assert any("I21.7 (closest: " in line for line in report.lines())


def test_rare_codes_depend_on_min_code_notes(own):
    """Codes with fewer notes than min_code_notes are named; the threshold is the caller's."""
    assert own.report.rare_codes == ["I20.0"]
    strict = load_corpus(FIXTURE, min_code_notes=9, log=False)
    assert strict.report.rare_codes == ["I20.0", "I50.1", "J45.0"]
    assert any("fewer than 9 notes" in line and "I50.1 (6)" in line for line in strict.report.lines())


def test_report_lines_and_summary(own):
    """The report's first line sums the corpus up; one line per kind of problem follows."""
    lines = own.report.lines()
    assert lines[0] == "52 notes of 57 rows kept, 7 codes in 5 categories, notes per code min/median/max 1/9/10"
    assert "skipped 1 note with an empty text: P0053" in lines
    assert "skipped 1 note with a duplicate id: P0005" in lines
    assert lines[1] == "own_notes.csv: columns read as text=Жалобы, code=МКБ, id=ИД, sex=Пол, age=Возраст"
    assert len(lines) == 1 + 1 + 4 + 1 + 1  # summary, columns, four skip reasons, unknown codes, rare codes


def test_report_to_dict_has_counts_not_ids(own):
    """What a graph or card records of the report holds counts and codes only, never the ids of skipped notes."""
    data = own.report.to_dict()
    assert data == {
        "rows": 57,
        "notes": 52,
        "codes": 7,
        "categories": 5,
        "skipped": {"an empty text": 1, "no code": 1, "a duplicate id": 1, "a duplicate text": 1},
        "unknown_codes": ["I21.7"],
        "rare_codes": ["I20.0"],
    }
    assert "P0053" not in json.dumps(data)


def test_names_fingerprint_and_describe(own):
    """A file's corpus is named by its stem, its cards say «private notes» unless given a name, and describe() holds no
    path."""
    assert own.name == "own_notes" and own.card_name == "private notes"
    assert not own.packaged
    named = load_corpus(FIXTURE, name="clinic", log=False)
    assert named.name == named.card_name == "clinic"
    described = named.describe()
    assert described["name"] == "clinic" and described["fingerprint"] == own.fingerprint
    assert described["notes"] == 52
    text = json.dumps(described, ensure_ascii=False)
    assert str(FIXTURE.parent) not in text and "own_notes" not in text


def test_report_is_logged_unless_told_not_to(caplog):
    """log=True logs the report's lines under the corpus' name; log=False logs nothing."""
    with caplog.at_level(logging.INFO, logger="medsyn.corpus"):
        load_corpus(FIXTURE, name="clinic", log=False)
    assert not [r for r in caplog.records if r.name == "medsyn.corpus"]
    with caplog.at_level(logging.INFO, logger="medsyn.corpus"):
        load_corpus(FIXTURE, name="clinic")
    messages = [r.getMessage() for r in caplog.records if r.name == "medsyn.corpus"]
    assert messages[0].startswith("notes clinic: 52 notes of 57 rows kept")
    assert any("duplicate text: P0056" in m for m in messages)


def test_notes_args_load_passes_columns_and_name(tmp_path):
    """NotesArgs is the four options every command takes; load() reads with them."""
    assert NotesArgs().notes == DEFAULT_NOTES == "rumedtop3:train"
    path = tmp_path / "x.csv"
    rows = "\n".join(f"{n['text']};{n['code']}" for n in NOTES)
    path.write_text("описание;диагноз\n" + rows + "\n", encoding="utf-8")
    corpus = NotesArgs(notes=str(path), text_column="описание", code_column="диагноз", notes_name="ward 3").load(
        log=False
    )
    assert corpus.card_name == "ward 3" and [n["code"] for n in corpus.notes] == ["M54.5", "J06.9", "I20.8"]


def test_notes_fingerprint_depends_on_id_text_code_only(own):
    """The fingerprint covers ids, texts and codes (and their order), not sex, age or anything else."""
    notes = own.notes
    assert notes_fingerprint(notes) == own.fingerprint
    bare = [{"id": n["id"], "text": n["text"], "code": n["code"]} for n in notes]
    assert notes_fingerprint(bare) == own.fingerprint
    changed = [dict(n) for n in bare]
    changed[0]["text"] += " ."
    assert notes_fingerprint(changed) != own.fingerprint
    recoded = [dict(n) for n in bare]
    recoded[0]["code"] = "I21.4"
    assert notes_fingerprint(recoded) != own.fingerprint
    assert notes_fingerprint(bare[::-1]) != own.fingerprint


# -- packaged splits --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["train", "dev"])
def test_packaged_rumedtop3_is_read_as_it_ships(split):
    """rumedtop3:SPLIT gives exactly medsyn.data.load_rumedtop3's notes, with nothing skipped."""
    from medsyn.data import load_rumedtop3

    corpus = load_corpus(f"rumedtop3:{split}", log=False)
    shipped = load_rumedtop3(split)
    assert corpus.notes == shipped
    assert corpus.packaged and corpus.card_name == corpus.name == f"rumedtop3:{split}"
    assert corpus.report.rows == corpus.report.kept == len(shipped)
    assert corpus.report.skipped == {} and corpus.report.unknown_codes == {}


def test_packaged_train_keeps_the_note_a_file_copy_would_drop(tmp_path):
    """The train split holds one duplicate text: read packaged it stays, read from a copied file it is skipped."""
    from medsyn.data import load_rumedtop3

    shipped = load_rumedtop3("train")
    copy = tmp_path / "train.jsonl"
    copy.write_text("\n".join(json.dumps(n, ensure_ascii=False) for n in shipped) + "\n", encoding="utf-8")
    from_file = load_corpus(copy, log=False)
    assert load_corpus("rumedtop3:train", log=False).report.kept == len(shipped)
    assert from_file.report.kept == len(shipped) - 1
    assert list(from_file.report.skipped) == ["a duplicate text"]


def test_packaged_reference_notes():
    """medsyn-reference:gpt4 gives the paper's packaged GPT-4 notes unchanged."""
    from medsyn.data import load_reference

    corpus = load_corpus("medsyn-reference:gpt4", log=False)
    assert corpus.notes == load_reference("gpt4") and corpus.packaged


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("rumedtop3:test", "give rumedtop3:train or rumedtop3:dev"),
        ("medsyn-reference:gpt5", "give medsyn-reference:gpt4"),
    ],
)
def test_unknown_packaged_split_is_refused(source, says):
    """A packaged source with an unknown split gets an error that lists the valid ones."""
    with pytest.raises(MedsynError, match=says):
        load_corpus(source, log=False)


# -- file kinds -------------------------------------------------------------------------------------------------------
def test_tsv(tmp_path):
    """A .tsv is read tab-separated, with running row ids (no file name) when it has no id column."""
    path = tmp_path / "notes.tsv"
    path.write_text("text\tcode\n" + "".join(f"{n['text']}\t{n['code']}\n" for n in NOTES), encoding="utf-8")
    corpus = load_corpus(path, log=False)
    assert [n["code"] for n in corpus.notes] == ["M54.5", "J06.9", "I20.8"]
    assert [n["id"] for n in corpus.notes] == ["row-1", "row-2", "row-3"]
    assert corpus.name == "notes"


def test_comma_csv_with_quoted_delimiters(tmp_path):
    """A ',' CSV whose texts hold ';' and quoted ',' is sniffed as ','."""
    path = tmp_path / "notes.csv"
    path.write_text(
        'note,icd10\n"Жалобы: кашель; насморк, боль в горле.",J06.9\n"Боль в пояснице; онемение",M54.5\n',
        encoding="utf-8",
    )
    corpus = load_corpus(path, log=False)
    assert [n["text"] for n in corpus.notes] == ["Жалобы: кашель; насморк, боль в горле.", "Боль в пояснице; онемение"]
    assert [n["code"] for n in corpus.notes] == ["J06.9", "M54.5"]


def test_jsonl_with_text_and_code_keys(tmp_path):
    """A .jsonl with text/code keys; codes in lower case or with Cyrillic look-alike letters are normalised."""
    path = tmp_path / "notes.jsonl"
    rows = [dict(NOTES[0], code="м54.5"), dict(NOTES[1], code="j06.9"), NOTES[2]]  # Cyrillic м
    rows.append({"text": "Жалобы на жажду и сухость во рту.", "code": "Е11.9"})  # Cyrillic Е
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    corpus = load_corpus(path, log=False)
    assert [n["code"] for n in corpus.notes] == ["M54.5", "J06.9", "I20.8", "E11.9"]
    assert corpus.report.unknown_codes == {}


def test_jsonl_gz_and_json_array(tmp_path):
    """A gzipped .jsonl and a .json array of objects are read too."""
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress("\n".join(json.dumps(n, ensure_ascii=False) for n in NOTES).encode("utf-8")))
    assert [n["code"] for n in load_corpus(gz, log=False).notes] == ["M54.5", "J06.9", "I20.8"]
    assert load_corpus(gz, log=False).name == "a"
    array = tmp_path / "b.json"
    array.write_text(json.dumps(NOTES, ensure_ascii=False), encoding="utf-8")
    assert [n["text"] for n in load_corpus(array, log=False).notes] == [n["text"] for n in NOTES]


def test_parquet_with_english_column_names(tmp_path):
    """A .parquet (pyarrow) with complaints/icd_code/gender/age columns; numbers become strings and ints."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "notes.parquet"
    table = pa.table(
        {
            "record_id": [101, 102, 103],
            "complaints": [n["text"] for n in NOTES],
            "icd_code": [n["code"] for n in NOTES],
            "gender": ["female", "male", "?"],
            "age": [41.0, 200.0, 63.0],
        }
    )
    pq.write_table(table, path)
    notes = load_corpus(path, log=False).notes
    assert [n["id"] for n in notes] == ["101", "102", "103"]
    assert notes[0]["sex"] == "F" and notes[1]["sex"] == "M" and "sex" not in notes[2]
    assert notes[0]["age"] == 41 and "age" not in notes[1] and notes[2]["age"] == 63


def test_folder_of_two_files(tmp_path):
    """A folder's notes files are read in name order (hidden and other files ignored); a duplicate id across files
    is skipped."""
    folder = tmp_path / "clinic"
    folder.mkdir()
    (folder / "a.csv").write_text(f"id;text;code\n1;{NOTES[0]['text']};{NOTES[0]['code']}\n", encoding="utf-8")
    (folder / "b.jsonl").write_text(
        json.dumps({"id": "2", **NOTES[1]}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "1", **NOTES[2]}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (folder / ".hidden.csv").write_text("a;b\n1;2\n", encoding="utf-8")
    (folder / "README.md").write_text("not notes", encoding="utf-8")
    corpus = load_corpus(folder, log=False)
    assert [(n["id"], n["code"]) for n in corpus.notes] == [("1", "M54.5"), ("2", "J06.9")]
    assert corpus.report.skipped == {"a duplicate id": ["1"]}
    assert corpus.name == "clinic" and corpus.report.rows == 3


def test_folder_without_notes_files(tmp_path):
    """A folder with no notes files is refused, naming the suffixes it looks for."""
    (tmp_path / "README.md").write_text("x", encoding="utf-8")
    with pytest.raises(MedsynError, match=r"holds no notes files \(.jsonl"):
        load_corpus(tmp_path, log=False)


def test_save_to_disk_folder(tmp_path):
    """A datasets save_to_disk folder (a Dataset or a DatasetDict) is read through datasets."""
    import datasets

    columns = {"text": [n["text"] for n in NOTES], "code": [n["code"] for n in NOTES]}
    datasets.Dataset.from_dict(columns).save_to_disk(str(tmp_path / "disk"))
    corpus = load_corpus(tmp_path / "disk", log=False)
    assert [n["code"] for n in corpus.notes] == ["M54.5", "J06.9", "I20.8"] and corpus.name == "disk"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(columns)}).save_to_disk(str(tmp_path / "dict"))
    assert [n["text"] for n in load_corpus(tmp_path / "dict", log=False).notes] == columns["text"]


def test_save_to_disk_ids_hold_no_path(tmp_path):
    """Ids made up for a save_to_disk folder without an id column do not carry the folder's path."""
    import datasets

    datasets.Dataset.from_dict({"text": [NOTES[0]["text"]], "code": [NOTES[0]["code"]]}).save_to_disk(
        str(tmp_path / "disk")
    )
    (note,) = load_corpus(tmp_path / "disk", log=False).notes
    assert str(tmp_path) not in note["id"]


def test_an_id_of_zero_is_kept(tmp_path):
    """A numeric id 0 is an id like any other."""
    path = tmp_path / "n.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": i, **n}, ensure_ascii=False) for i, n in enumerate(NOTES)), encoding="utf-8"
    )
    assert [n["id"] for n in load_corpus(path, log=False).notes] == ["0", "1", "2"]


# -- sources that cannot be read ----------------------------------------------------------------------------------------
def test_non_utf8_file_names_the_file(tmp_path):
    """A cp1251 CSV is refused with one line naming the file and how to re-save it."""
    path = tmp_path / "notes_cp1251.csv"
    path.write_bytes(("жалобы;мкб\n" + NOTES[0]["text"] + ";M54.5\n").encode("cp1251"))
    with pytest.raises(MedsynError) as err:
        load_corpus(path, log=False)
    message = str(err.value)
    assert "notes_cp1251.csv is not UTF-8" in message and "iconv -f cp1251" in message
    assert "\n" not in message


def test_no_recognisable_columns_names_the_columns(tmp_path):
    """A CSV with columns a;b is refused, naming the columns it has and the options that name others."""
    path = tmp_path / "ab.csv"
    path.write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(MedsynError) as err:
        load_corpus(path, log=False)
    message = str(err.value)
    assert "its columns: a, b" in message and "--text_column" in message and "a text and a code" in message


def test_a_named_column_that_is_missing(tmp_path):
    """text_column naming a column the file lacks is refused with the file's columns."""
    path = tmp_path / "n.csv"
    path.write_text("text;code\nболь;M54.5\n", encoding="utf-8")
    with pytest.raises(MedsynError, match=r"no column 'описание' for the note text; its columns: text, code"):
        load_corpus(path, text_column="описание", log=False)


def test_no_usable_note(tmp_path):
    """A file whose every row is skipped is refused, saying why."""
    path = tmp_path / "empty.csv"
    path.write_text("text,code\n,M54.5\nкашель,\n", encoding="utf-8")
    with pytest.raises(MedsynError, match="gave no usable note .*empty text.*no code"):
        load_corpus(path, log=False)


def test_broken_json_line(tmp_path):
    """A .jsonl line that is not JSON is named by file and line."""
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps(NOTES[0], ensure_ascii=False) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(MedsynError, match=r"n.jsonl:2 is not valid JSON"):
        load_corpus(path, log=False)


def test_missing_file(tmp_path):
    """A path that does not exist is refused with the kinds of sources there are."""
    with pytest.raises(MedsynError, match="does not exist; give rumedtop3:train"):
        load_corpus(tmp_path / "missing.csv", log=False)


@pytest.mark.parametrize("source", ["medsyn-test-nobody/no-such-notes", "medsyn-test-nobody/no-such-notes:dev"])
def test_hub_id_offline_is_one_error_line(source):
    """A Hub id that cannot be read (offline in the tests) is one MedsynError line that names it."""
    with pytest.raises(MedsynError) as err:
        load_corpus(source, log=False)
    message = str(err.value)
    assert f"cannot read the dataset {source!r}" in message and "\n" not in message


def test_report_defaults():
    """An empty report sums up to zeros and names no problem."""
    report = CorpusReport()
    assert report.kept == 0 and report.rare_codes == []
    assert report.lines() == ["0 notes of 0 rows kept, 0 codes in 0 categories, notes per code min/median/max 0/0/0"]
