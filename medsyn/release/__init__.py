"""Releases on the Hugging Face Hub: generated notes (:mod:`medsyn.release.notes`) and the knowledge graph
(:mod:`medsyn.release.kg`), each built as the exact folder that is uploaded, validated, then pushed through
:func:`medsyn.hub.upload`."""
