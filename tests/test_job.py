"""Tests of medsyn.job: shards, the kept/rejected/failed split, the job file, the output folder, its lock and notes."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket

import pytest

from medsyn.errors import ConfigError, FolderBusyError, MedsynError
from medsyn.job import (
    JOB_FILE,
    LOCK_FILE,
    check_job,
    check_out_dir,
    fingerprint,
    folder_lock,
    is_failed,
    load_notes,
    read_shards,
    split_of,
    split_records,
)

SPEC = {"backend": "transformers", "model": "gemma-3-270m", "seed": 3, "codes": ["M54"], "generation": {"top_p": 0.95}}


def _line(record) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def _shard(shard_dir, index: int, *lines: str):
    shard_dir.mkdir(parents=True, exist_ok=True)
    path = shard_dir / f"part-{index:05d}.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- shards and splits


def test_is_failed_needs_a_non_empty_error_type():
    assert is_failed({"id": "a", "error_type": "timeout"}) is True
    assert is_failed({"id": "a", "error_type": ""}) is False
    assert is_failed({"id": "a", "error_type": None}) is False
    assert is_failed({"id": "a", "note": "Жалобы на кашель."}) is False


def test_read_shards_skips_cut_malformed_and_foreign_lines(tmp_path, caplog):
    shards = tmp_path / "shards"
    _shard(
        shards,
        0,
        _line({"id": "a", "note": "Жалобы на боль в пояснице."}),
        "{not json}\n",
        _line(["a list", "not a record"]),
        _line({"note": "no id"}),
        _line({"id": 7, "note": "an id that is not a string"}),
        _line({"id": "b", "note": "Кашель."})[:-1],  # the last line of a killed run has no newline
    )
    (shards / "notes.jsonl").write_text(_line({"id": "x"}), encoding="utf-8")  # not a part-* shard
    with caplog.at_level(logging.WARNING, logger="medsyn.job"):
        records = read_shards(shards)
    assert records == [{"id": "a", "note": "Жалобы на боль в пояснице."}]
    messages = [r.getMessage() for r in caplog.records]
    assert "part-00000.jsonl:2 is not valid JSON; skipping it" in messages
    assert "part-00000.jsonl:3 is not a medsyn record (no 'id'); skipping it" in messages
    assert "part-00000.jsonl:4 is not a medsyn record (no 'id'); skipping it" in messages
    assert "part-00000.jsonl:5 is not a medsyn record (no 'id'); skipping it" in messages
    assert "part-00000.jsonl:6 was cut short (a killed run); skipping that record" in messages


def test_read_shards_keeps_the_first_done_record_and_lets_a_failed_one_give_way(tmp_path):
    shards = tmp_path / "shards"
    _shard(
        shards,
        0,
        _line({"id": "a", "note": "первая", "kept": True}),
        _line({"id": "b", "error_type": "timeout"}),
        _line({"id": "c", "error_type": "timeout"}),
    )
    _shard(
        shards,
        1,
        _line({"id": "a", "note": "вторая", "kept": True}),
        _line({"id": "b", "note": "после сбоя", "kept": False}),
        _line({"id": "c", "error_type": "http_400"}),
        _line({"id": "b", "note": "третья попытка", "kept": True}),
    )
    by_id = {r["id"]: r for r in read_shards(shards)}
    assert [r["id"] for r in read_shards(shards)] == ["a", "b", "c"]
    assert by_id["a"]["note"] == "первая"
    assert by_id["b"] == {"id": "b", "note": "после сбоя", "kept": False}
    assert by_id["c"] == {"id": "c", "error_type": "http_400"}


def test_read_shards_of_a_missing_folder_is_empty(tmp_path):
    assert read_shards(tmp_path / "nothing") == []


def test_read_shards_survives_half_a_cyrillic_character(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    good = _line({"id": "a", "note": "Жалобы"}).encode("utf-8")
    (shards / "part-00000.jsonl").write_bytes(good + '{"id": "b", "note": "Ж'.encode()[:-1])
    assert [r["id"] for r in read_shards(shards)] == ["a"]


def test_split_of_and_split_records():
    kept = {"id": "k", "kept": True}
    implicit = {"id": "i"}
    rejected = {"id": "r", "kept": False}
    failed = {"id": "f", "kept": False, "error_type": "connection"}
    assert [split_of(r) for r in (kept, implicit, rejected, failed)] == ["default", "default", "rejected", "failed"]
    groups = split_records([rejected, kept, failed, implicit])
    assert list(groups) == ["default", "rejected", "failed"]
    assert groups == {"default": [kept, implicit], "rejected": [rejected], "failed": [failed]}
    assert split_records([]) == {"default": [], "rejected": [], "failed": []}


# ---------------------------------------------------------------------------------------------- the job file


def test_fingerprint_is_short_stable_and_order_free():
    fp = fingerprint(SPEC)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fingerprint(dict(reversed(list(SPEC.items())))) == fp
    assert fingerprint(SPEC | {"seed": 4}) != fp
    assert fingerprint({"codes": ["Дорсалгия"]}) != fingerprint({"codes": ["дорсалгия"]})


def test_check_job_writes_the_job_file_of_a_new_folder(tmp_path):
    out = tmp_path / "new" / "out"
    check_job(out, SPEC, holds_notes=False)
    payload = json.loads((out / JOB_FILE).read_text(encoding="utf-8"))
    assert payload["job"] == SPEC
    assert payload["fingerprint"] == fingerprint(SPEC)
    assert set(payload) == {"fingerprint", "job", "created_at"}
    assert [p.name for p in out.iterdir()] == [JOB_FILE]  # written whole, no temporary file left


def test_check_job_accepts_the_same_settings_and_leaves_the_file(tmp_path):
    check_job(tmp_path, SPEC, holds_notes=False)
    path = tmp_path / JOB_FILE
    path.write_text(path.read_text(encoding="utf-8").replace('"created_at": "', '"created_at": "kept-'), "utf-8")
    before = path.read_text(encoding="utf-8")
    check_job(tmp_path, dict(SPEC), holds_notes=True)
    assert path.read_text(encoding="utf-8") == before


def test_check_job_refuses_a_changed_setting_when_the_folder_holds_notes(tmp_path):
    check_job(tmp_path, SPEC, holds_notes=False)
    changed = SPEC | {"seed": 4, "codes": ["M54", "J06"]}
    with pytest.raises(ConfigError) as err:
        check_job(tmp_path, changed, holds_notes=True)
    assert str(err.value) == (
        f'{tmp_path} holds notes of a job with other settings (seed: 3 → 4; codes: ["M54"] → ["M54", "J06"]); '
        "pass --overwrite to start afresh there, or another --out"
    )
    assert json.loads((tmp_path / JOB_FILE).read_text(encoding="utf-8"))["job"] == SPEC


def test_check_job_replaces_the_settings_of_a_folder_without_notes(tmp_path):
    check_job(tmp_path, SPEC, holds_notes=False)
    changed = SPEC | {"seed": 4}
    check_job(tmp_path, changed, holds_notes=False)
    payload = json.loads((tmp_path / JOB_FILE).read_text(encoding="utf-8"))
    assert payload["job"] == changed and payload["fingerprint"] == fingerprint(changed)


def test_check_job_records_a_field_the_old_job_file_lacks(tmp_path):
    old = {k: v for k, v in SPEC.items() if k != "generation"}
    check_job(tmp_path, old, holds_notes=False)
    check_job(tmp_path, SPEC, holds_notes=True)
    assert json.loads((tmp_path / JOB_FILE).read_text(encoding="utf-8"))["job"] == SPEC


def test_check_job_refuses_notes_without_a_job_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        check_job(tmp_path, SPEC, holds_notes=True)
    assert str(err.value) == (
        f"{tmp_path} holds notes but no medsyn_job.json, so its settings are unknown; pass --overwrite to start "
        "afresh there, or another --out"
    )
    assert not (tmp_path / JOB_FILE).exists()


def test_check_job_names_an_unreadable_job_file(tmp_path):
    (tmp_path / JOB_FILE).write_text("{broken", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"medsyn_job\.json is unreadable \(.*\); pass --overwrite to start afresh"):
        check_job(tmp_path, SPEC, holds_notes=False)
    (tmp_path / JOB_FILE).write_text('{"fingerprint": "x"}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is unreadable \('job'\)"):
        check_job(tmp_path, SPEC, holds_notes=False)


# ---------------------------------------------------------------------------------------------- the output folder


def test_check_out_dir_creates_a_missing_folder_and_leaves_no_probe(tmp_path):
    out = tmp_path / "a" / "b"
    check_out_dir(out)
    assert out.is_dir() and list(out.iterdir()) == []


def test_check_out_dir_refuses_a_file_and_a_path_under_a_file(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        check_out_dir(file)
    assert str(err.value) == f"--out {file} is a file; give a folder path"
    under = file / "deeper" / "out"
    with pytest.raises(ConfigError) as err:
        check_out_dir(under)
    assert str(err.value) == f"--out {under} lies under {file}, which is a file; give a folder path"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_out_dir_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match=r"cannot be written \(.*\); choose a folder you can write to"):
            check_out_dir(ro / "out")
    finally:
        ro.chmod(0o700)


def test_a_second_lock_on_the_same_folder_names_the_holder(tmp_path):
    out = tmp_path / "out"
    with folder_lock(out):
        holder = (out / LOCK_FILE).read_text(encoding="utf-8")
        assert holder.startswith(f"process {os.getpid()} on {socket.gethostname()} since ")
        with pytest.raises(FolderBusyError) as err:
            with folder_lock(out):
                pytest.fail("a second writer got the lock")
        message = str(err.value)
        assert message.startswith(f"{out} is being written by process {os.getpid()} on {socket.gethostname()}")
        assert message.endswith("; wait for that run to end (or stop it), or pass another --out")
        assert (out / LOCK_FILE).read_text(encoding="utf-8") == holder  # the refused writer changed nothing


def test_the_lock_is_released_after_the_context(tmp_path):
    with folder_lock(tmp_path):
        pass
    with (tmp_path / LOCK_FILE).open("a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if still held
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    with folder_lock(tmp_path):  # and a later run takes it again
        assert f"process {os.getpid()} " in (tmp_path / LOCK_FILE).read_text(encoding="utf-8")


def test_the_lock_is_released_when_the_body_raises(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with folder_lock(tmp_path):
            raise RuntimeError("boom")
    with folder_lock(tmp_path):
        pass


# ---------------------------------------------------------------------------------------------- reading notes


def test_load_notes_reads_a_rumedtop3_file_and_cuts_codes(tmp_path):
    path = tmp_path / "notes.jsonl"
    rows = [
        {"idx": "n1", "symptoms": "  Боли в пояснице.  ", "code": "M54.5"},
        {"idx": "n2", "symptoms": "Кашель, насморк.", "code": "J06"},
    ]
    path.write_text("".join(_line(r) for r in rows), encoding="utf-8")
    assert load_notes(path) == [
        {"id": "n1", "text": "Боли в пояснице.", "code": "M54"},
        {"id": "n2", "text": "Кашель, насморк.", "code": "J06"},
    ]
    assert load_notes(str(path)) == load_notes(path)


def test_load_notes_of_a_folder_being_written_reads_its_kept_notes(tmp_path):
    _shard(
        tmp_path / "shards",
        0,
        _line({"id": "a", "note": "Жалобы на кашель.", "icd10_code": "J06.9", "kept": True}),
        _line({"id": "b", "note": "Отклонена.", "icd10_code": "M54.5", "kept": False}),
        _line({"id": "c", "error_type": "timeout", "icd10_code": "N92"}),
        _line({"id": "d", "note": "Боль в спине.", "icd10_code": "M54.5", "kept": True}),
    )
    assert load_notes(tmp_path) == [
        {"id": "a", "text": "Жалобы на кашель.", "code": "J06"},
        {"id": "d", "text": "Боль в спине.", "code": "M54"},
    ]


def test_load_notes_reads_a_dataset_folder(tmp_path):
    rows = [{"id": "x1", "note": "Головная боль.", "icd10_code": "G44.2"}, {"note": "Кашель.", "icd10_code": "J06"}]
    (tmp_path / "train.jsonl").write_text("".join(_line(r) for r in rows), encoding="utf-8")
    notes = load_notes(tmp_path)
    assert sorted(n["code"] for n in notes) == ["G44", "J06"]
    assert {n["text"] for n in notes} == {"Головная боль.", "Кашель."}


def test_load_notes_names_what_it_cannot_read(tmp_path):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(MedsynError) as err:
        load_notes(missing)
    assert str(err.value) == f"cannot read notes from {missing}: expected a .jsonl file or a dataset folder"
    with pytest.raises(MedsynError, match="holds no data files; pass a folder written by 'medsyn generate'"):
        load_notes(tmp_path)
    (tmp_path / "train.jsonl").write_text(_line({"title": "нет текста", "label": 1}), encoding="utf-8")
    with pytest.raises(MedsynError, match=r"columns \['title', 'label'\] hold no note text \(note/text/symptoms\)"):
        load_notes(tmp_path)
