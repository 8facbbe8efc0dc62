"""The Space in a real browser: Debian's chromium driven by Playwright (never `playwright install`).

The flow: load the page, pick M54 by its Russian name, see the neighbourhood plot render, draw a task, add a typed
symptom, generate, and see the requested symptoms highlighted; then open a dataset and read a note. Screenshots go
to ``$MEDSYN_SCREENSHOTS`` (default: the test's temporary folder). The app runs on a simulated endpoint whose notes
use everyday complaint words, so that symptoms are found; the API tests cover the tiny in-process model.
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the 'dev' extra")
    if CHROMIUM is None:
        print("SKIP reason: no chromium on PATH; install it with `apt-get install -y chromium`")
        pytest.skip("no chromium on PATH; install it with `apt-get install -y chromium`")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MEDSYN_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(browser, endpoint_space_url):
    """One page for the flows below, in order, as one visitor would go through them."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ru-RU")
    page.outside, page.errors = [], []
    page.on(
        "request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:")) else page.outside.append(r.url)
    )
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(endpoint_space_url)
    page.locator("#medsyn-graph .js-plotly-plot").wait_for(timeout=60_000)
    page.locator("#medsyn-task-symptoms .token").first.wait_for(timeout=60_000)  # the start-up chain has run
    yield page
    page.close()


def _settled_tokens(page, quiet_s: float = 1.5, timeout_s: float = 60) -> list[str]:
    """The task's symptom tokens once they have not changed for ``quiet_s`` (handlers still running can change them)."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = page.locator("#medsyn-task-symptoms .token").all_inner_texts()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
        page.wait_for_timeout(250)
    raise AssertionError(f"the task's symptoms kept changing for {timeout_s} s: {last}")


def test_pick_sample_generate_highlight(page, shots):
    page.locator("button", has_text="J06").first.click()  # an example code
    page.locator("#medsyn-hierarchy", has_text="J06 · Острые инфекции").wait_for(timeout=60_000)
    box = page.locator("#medsyn-code input")
    box.click()
    box.fill("дорсалг")  # search by the Russian name
    box.press("End")  # a key event, as typing makes: the list filters on it
    page.get_by_role("option", name="M54 · Дорсалгия ●").first.click()
    page.locator("#medsyn-hierarchy", has_text="M54 · Дорсалгия").wait_for(timeout=60_000)
    page.locator("#medsyn-graph .gtitle", has_text="M54: top 14").wait_for(timeout=60_000)
    assert page.locator("#medsyn-graph .scatterlayer .point").count() > 14  # symptoms, related codes, the code
    assert "ДОРСОПАТИИ" in page.locator("#medsyn-hierarchy").inner_text()

    # the code's own task (drawn after the plot) must land before the next draw, or it could overwrite that draw
    before = _settled_tokens(page)
    page.click("#medsyn-draw")
    page.wait_for_function(
        "b => JSON.stringify([...document.querySelectorAll('#medsyn-task-symptoms .token')].map(t => t.innerText)) != b",
        arg=json.dumps(before, ensure_ascii=False),
    )
    assert 2 <= len(_settled_tokens(page)) <= 5
    typed = page.locator("#medsyn-task-symptoms input")
    typed.fill("слабость")
    typed.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#medsyn-task-symptoms .token')].some(t => t.innerText.trim() == 'слабость')"
    )
    page.keyboard.press("Escape")
    assert "слабость" in [t.strip() for t in _settled_tokens(page)]

    page.click("#medsyn-generate")
    page.locator("#medsyn-verdict", has_text="quality filter").wait_for(timeout=60_000)
    note = page.locator("#medsyn-note")
    assert "слабость" in note.inner_text()
    legend = note.locator("[data-testid='highlighted-text:category-legend'] .legend-item").all_inner_texts()
    assert "слабость" in legend, (legend, page.locator("#medsyn-verdict").inner_text())
    marked = note.locator(".token.highlighted").all_inner_texts()
    assert any(m.strip().lower() == "слабость" for m in marked), marked
    assert "symptom coverage" in page.locator("#medsyn-verdict").inner_text()
    page.screenshot(path=str(shots / "space-generate.png"), full_page=True)
    assert not page.outside, f"requests left the machine: {page.outside[:5]}"
    assert not page.errors, page.errors


def test_bad_input_shows_one_line(page, shots):
    removes = page.locator("#medsyn-task-symptoms .token-remove")
    while removes.count():
        removes.first.click()
    page.click("#medsyn-generate")
    page.locator(".toast-body", has_text="symptom list is empty").wait_for(timeout=20_000)
    assert "Traceback" not in page.content()
    page.screenshot(path=str(shots / "space-error.png"))


def test_browse_a_dataset_and_about(page, shots):
    page.get_by_role("tab", name="Browse a dataset").click()
    page.click("#medsyn-open")
    page.locator("#medsyn-browse-status", has_text="3 kept notes").wait_for(timeout=60_000)
    page.locator("#medsyn-rows [data-testid='cell-0-0']").click()  # the first row's id
    page.locator("#medsyn-row-details", has_text="requested symptoms").wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "space-browse.png"), full_page=True)
    page.get_by_role("tab", name="About").click()
    page.locator("text=Licences and sources").wait_for(timeout=60_000)
    assert page.locator(".js-plotly-plot:visible").count() >= 2
    page.screenshot(path=str(shots / "space-about.png"), full_page=True)
