"""`python spaces/medsyn-demo/app.py` serves where a Space tells it to (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)."""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_port

APP = Path(__file__).resolve().parents[2] / "spaces" / "medsyn-demo" / "app.py"


def test_app_serves_on_the_spaces_port(kg_path, sim_url, tmp_path):
    import httpx

    port = free_port()
    home = tmp_path / "home"
    (home / "kg").mkdir(parents=True)
    (home / "kg" / "medsyn-kg.json").symlink_to(kg_path)
    env = dict(os.environ, MEDSYN_HOME=str(home), MEDSYN_ENDPOINT=sim_url, GRADIO_SERVER_NAME="127.0.0.1")
    env["GRADIO_SERVER_PORT"] = str(port)
    log = tmp_path / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, page = time.time() + 180, None
        while time.time() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None and page.status_code == 200, log.read_text()
        text = log.read_text()
        assert "graph ready" in text and "ready in" in text  # start-up progress in the log
        assert "gradio.live" not in text  # no share link
        proc.terminate()  # SIGTERM, as a Space restart sends
        assert proc.wait(timeout=30) == 143
        text = log.read_text()
        assert "the Space stopped (SIGTERM); it keeps no notes, so nothing was lost" in text
        assert "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_the_front_matter_names_the_gradio_it_was_tested_with():
    import gradio
    import yaml

    space = Path(__file__).resolve().parents[2] / "spaces" / "medsyn-demo"
    meta = yaml.safe_load((space / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and (space / meta["app_file"]).exists()
    assert {"medsyn/ru-notes", "medsyn/ru-icd10-kg"} <= set(meta["datasets"]) and meta["license"] and meta["tags"]
    requirements = (space / "requirements.txt").read_text(encoding="utf-8")
    assert "medsyn[space," in requirements and "download.pytorch.org/whl/cpu" in requirements
