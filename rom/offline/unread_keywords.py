"""Keywords of an offline configuration that the chosen mode does not read.

Some keywords of a section are read only in some modes of that section: ``[ecm] block_size`` only by
``selection = "block"``, ``[indicator] margin`` only with ``calibrate = true``... A keyword the user gives in a
mode that does not read it would be ignored without a word (the run then differs from what the file says), so
:func:`check_offline_keywords` refuses it, naming the file, the keyword, the mode and the fix. Only the keywords
given in the file count (pydantic's ``model_fields_set``): a default never triggers, and a configuration dumped
with all its fields (a model's provenance) is not checked.
"""
from __future__ import annotations

from pydantic import BaseModel

from structrom.rom.config import ReadWhen, check_unread_keywords

_SELECTING = ReadWhen(lambda e: e.selection != "all", ("selection",), 'selection = "block" or "greedy"')
_BLOCK = ReadWhen(lambda e: e.selection == "block", ("selection",), 'selection = "block"')
_ASSEMBLED = ReadWhen(lambda e: e.selection != "all" and e.integrand == "assembled", ("selection", "integrand"),
                      'integrand = "assembled" (with selection = "block" or "greedy")')
_CALIBRATED = ReadWhen(lambda i: i.calibrate, ("calibrate",), "calibrate = true")

#: Section (dotted path in the configuration) -> keyword -> when the offline stage reads it. A keyword not
#: listed is read in every mode of its section. ``[ecm]``: ``selection = "all"`` takes every point with its FE
#: weight and reads no other keyword (the integrand is not used); the greedy rule scores every point once per
#: selection (no block, pool, shortlist or single-precision screening: structrom.rom.ecm_loop); the factored
#: integrand has no row compression (max_rows, max_gram_rows: the assembled matrix's); row_tolerance is the
#: assembled compression's or the factored stress compression's. ``[greedy] seed``: the Latin hypercube's.
#: ``[dictionary]``: one cluster has a constant classifier (no regularization) and no other cluster to overlap.
#: ``[separated.online]``: material, temperature and time build the FE kernel's entries only.
READ_WHEN: dict[str, dict[str, ReadWhen]] = {
    "ecm": {
        **{key: _SELECTING for key in ("tolerance", "max_points", "integrand", "removal")},
        **{key: _BLOCK for key in ("block_size", "block_correlation", "screening", "shortlist", "block_choice")},
        "full_scores_every": ReadWhen(lambda e: e.selection == "block" and e.shortlist > 0, ("selection", "shortlist"),
                                      'selection = "block" with shortlist > 0'),
        "stress_compression": ReadWhen(lambda e: e.selection != "all" and e.integrand == "factored",
                                       ("selection", "integrand"),
                                       'integrand = "factored" (with selection = "block" or "greedy")'),
        "row_tolerance": ReadWhen(lambda e: e.selection != "all" and (e.integrand == "assembled"
                                                                      or e.stress_compression),
                                  ("selection", "integrand", "stress_compression"),
                                  'integrand = "assembled", or "factored" with stress_compression = true (with '
                                  'selection = "block" or "greedy")'),
        "max_rows": _ASSEMBLED,
        "max_gram_rows": _ASSEMBLED,
    },
    "indicator": {"margin": _CALIBRATED, "cross_validate_cubature": _CALIBRATED},
    "greedy": {"seed": ReadWhen(lambda g: g.sampling == "latin_hypercube", ("sampling",),
                                'sampling = "latin_hypercube"')},
    "dictionary": {key: ReadWhen(lambda d: d.clusters > 1, ("clusters",), "clusters > 1")
                   for key in ("regularization", "overlap")},
    "separated.online": {key: ReadWhen(lambda o: o.entries == "fe_kernel", ("entries",), 'entries = "fe_kernel"')
                         for key in ("material", "temperature", "time")},
}


def check_offline_keywords(cfg: BaseModel, source: str) -> None:
    """:func:`~structrom.rom.config.check_unread_keywords` of an offline configuration (:data:`READ_WHEN`)."""
    check_unread_keywords(cfg, source, READ_WHEN)
