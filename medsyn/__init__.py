"""medsyn: knowledge-graph-guided synthetic Russian clinical notes.

Importing ``medsyn`` is cheap: torch, transformers, datasets and gradio are imported only by the modules that
need them, when they are used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
