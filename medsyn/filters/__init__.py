"""Filters that decide whether a generated note is kept, applied per note by the generator.

* :mod:`medsyn.filters.note`: :class:`~medsyn.filters.note.NoteFilter` (symptom coverage, copying of real notes and of
  the style example) and the :class:`~medsyn.filters.note.CopyIndex` it uses.
* :mod:`medsyn.filters.consistency`: :class:`~medsyn.filters.consistency.ConsistencyCheck`, the real-notes
  classifier's top-k verdict.
* :mod:`medsyn.filters.linear`: the char n-gram linear classifier that the check and the evaluation share.

The evaluation (:mod:`medsyn.eval`) measures whole sets with the same parts.
"""
