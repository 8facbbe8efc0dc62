"""The medsyn Gradio Space: pick a code, see its knowledge, sample a task, watch a note being written, browse a release.

Modules (gradio and plotly load only where used):

* :mod:`medsyn.space.core`: :class:`~medsyn.space.core.SpaceConfig` and :class:`~medsyn.space.core.Demo`, the
  library calls behind every panel, with the input checks; no gradio.
* :mod:`medsyn.space.figures`: the interactive plotly figures (a code's neighbourhood, the graph's statistics).
* :mod:`medsyn.space.browse`: opening a dataset folder or Hub id written by ``medsyn generate``.
* :mod:`medsyn.space.ui`: the Gradio app; each panel is a named API endpoint.

``spaces/medsyn-demo/app.py`` runs it: ``python spaces/medsyn-demo/app.py`` (or ``make space``).
"""

from __future__ import annotations

__all__ = ["SpaceConfig", "Demo"]


def __getattr__(name: str):
    if name in __all__:
        from medsyn.space import core

        return getattr(core, name)
    raise AttributeError(name)
