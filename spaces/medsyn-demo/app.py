"""The medsyn Space: knowledge-graph-guided generation of Russian clinical notes, and graph exploration.

    python spaces/medsyn-demo/app.py            # or: make space

Serves on GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (127.0.0.1:7860 by default), as Hugging Face Spaces do. The engine
is the embedded Gemma 3 270M with its packaged LoRA adapter, or the endpoints in MEDSYN_ENDPOINT. The graph and the
model load once at start-up (built or converted on a first run, with progress in the log).
"""

import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from medsyn.space.ui import serve  # noqa: E402


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve()


if __name__ == "__main__":
    raise SystemExit(main())
