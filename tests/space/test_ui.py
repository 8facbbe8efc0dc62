"""Each panel of the Space through its named API endpoint, on the app launched with the tiny model."""

import pytest

pytest.importorskip("gradio_client", reason="the Space's tests need the 'space' extra")


@pytest.fixture(scope="module")
def client(space_url):
    from gradio_client import Client

    return Client(space_url, verbose=False)


def _fails(client, message, *args, api_name):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message) as err:
        client.predict(*args, api_name=api_name)
    assert "Traceback" not in str(err.value)


def test_the_named_endpoints(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/lookup", "/graph", "/sample", "/generate", "/browse", "/note"} <= names


def test_lookup(client):
    hierarchy, coverage, table = client.predict("M54", api_name="/lookup")
    assert "M54 · Дорсалгия" in hierarchy and "ДОРСОПАТИИ" in hierarchy and "(chapter)" in hierarchy
    assert "real notes" in coverage and "w(M54)" in coverage
    assert table["headers"] == ["symptom", "count", "weight"] and len(table["data"]) > 50
    _, uncovered, rows = client.predict("A00", api_name="/lookup")
    assert "No symptoms for A00" in uncovered and "Nearest codes" in uncovered and not rows["data"]
    _fails(client, "unknown ICD-10 code 'Z999'.*closest", "Z999", api_name="/lookup")
    _fails(client, "enter an ICD-10 code", "", api_name="/lookup")


def test_graph(client):
    plot = client.predict("M54", api_name="/graph")
    assert plot["type"] == "plotly" and "Дорсалгия" in plot["plot"] and "symptom" in plot["plot"]
    _fails(client, "unknown ICD-10 code", "Q99.99.9", api_name="/graph")


def test_sample(client):
    symptoms, sex, age, example = client.predict("M54", 7, api_name="/sample")
    assert 2 <= len(symptoms) <= 5 and sex in ("M", "F") and 0 <= age <= 120 and len(example) > 20
    assert client.predict("M54", 7, api_name="/sample")[0] == symptoms  # the seed decides
    _fails(client, "no real notes.*try", "A00", 1, api_name="/sample")


def test_generate_streams_and_judges(client):
    job = client.submit("J06", ["кашель", "насморк"], "F", 33, 5, "example_guided", 0.7, 24, api_name="/generate")
    note, verdict, closest, prompt = job.result(timeout=120)
    updates = job.outputs()
    assert len(updates) > 3  # the prompt first, then the note piece by piece, then the verdict
    assert "кашель, насморк" in prompt and "quality filter" in verdict and "symptom coverage" in verdict
    assert note and "".join(piece["token"] for piece in note).strip()


@pytest.mark.parametrize(
    "args, message",
    [
        (("Z999", ["кашель"], "F", 33, 0), "unknown ICD-10 code"),
        (("M54", [], "F", 33, 0), "symptom list is empty"),
        (("M54", [f"s{i}" for i in range(12)], "F", 33, 0), "too many"),
        (("M54", ["кашель"], "F", 999, 0), "between 0 and 120"),
        (("M54", ["я" * 200], "F", 33, 0), "characters; keep each under"),
    ],
)
def test_generate_refuses_bad_input(client, args, message):
    _fails(client, message, *args, "example_guided", 0.7, 24, api_name="/generate")


def test_browse_and_note(client, notes_folder):
    status, rows = client.predict(str(notes_folder), "kept", "", api_name="/browse")
    assert status.startswith("3 kept notes") and len(rows["data"]) == 3
    status, rows = client.predict(str(notes_folder), "rejected", "M54", api_name="/browse")
    assert "rejected notes with codes starting M54" in status
    assert all(r[1].startswith("M54") for r in rows["data"])
    note_id = client.predict(str(notes_folder), "kept", "", api_name="/browse")[1]["data"][0][0]
    note, details = client.predict(str(notes_folder), "kept", note_id, api_name="/note")
    assert "requested symptoms" in details and "kept" in details and isinstance(note, list)
    _fails(client, "no dataset folder at ./nowhere", "./nowhere", "kept", "", api_name="/browse")
    _fails(client, "no note with id 'x'", str(notes_folder), "kept", "x", api_name="/note")
