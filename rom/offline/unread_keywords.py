"""Keywords of an offline configuration that the chosen mode does not read.

Some keywords of a section are read only in some modes of that section: ``[ecm] block_size`` only by
``selection = "block"``, ``[indicator] margin`` only with ``calibrate = true``... A keyword the user gives in a
mode that does not read it would be ignored without a word (the run then differs from what the file says), so
:func:`check_unread_keywords` refuses it, naming the file, the keyword, the mode and the fix. Only the keywords
given in the file count (pydantic's ``model_fields_set``): a default never triggers, and a configuration dumped
with all its fields (a model's provenance) is not checked.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from structrom.rom.config import ConfigError


@dataclass(frozen=True)
class ReadWhen:
    """A keyword read only when ``test(section)`` holds. ``mode``: the section's fields that decide it (shown
    with their values in the message); ``reader``: the modes that read it, as written in the file."""

    test: Callable[[BaseModel], bool]
    mode: tuple[str, ...]
    reader: str


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
    "separated.online": {key: ReadWhen(lambda o: o.entries == "fe_kernel", ("entries",), 'entries = "fe_kernel"')
                         for key in ("material", "temperature", "time")},
}


def _toml(value) -> str:
    """``value`` as written in TOML."""
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def unread_keywords(section: BaseModel, rules: dict[str, ReadWhen]) -> list[str]:
    """The keywords given in ``section`` (its ``model_fields_set``) that its mode does not read, sorted."""
    return sorted(key for key in section.model_fields_set & rules.keys() if not rules[key].test(section))


def check_unread_keywords(cfg: BaseModel, source: str) -> None:
    """Raise :class:`ConfigError` (one line per keyword) for every keyword of :data:`READ_WHEN` given in the
    configuration file ``source`` (parsed into ``cfg``) that the mode chosen in its section does not read."""
    lines = []
    for where, rules in READ_WHEN.items():
        section: BaseModel | None = cfg
        for name in where.split("."):
            section = getattr(section, name, None)
        if section is None:
            continue
        for key in unread_keywords(section, rules):
            rule = rules[key]
            mode = ", ".join(f"{f} = {_toml(getattr(section, f))}" for f in rule.mode)
            lines.append(f"{source}: {where}.{key}: not read with {mode} (only {rule.reader} reads it): remove "
                         f"{key}, or choose {rule.reader}")
    if lines:
        raise ConfigError("\n".join(lines))
