"""The offline stage table: per stage its sizes, time, peak memory of every rank and the distributed arrays held.

Every stage reports, per rank, the peak resident set so far (``getrusage``, GiB) and the local row counts of
the distributed arrays it built (snapshots, modes, integrand, dual bases...) next to their global row counts:
the record that no rank holds a full-size copy (:mod:`structrom.rom.offline.pipeline` writes it to the
model's provenance, ``stages[i]["arrays"]``).
"""
from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def peak_rss_gib() -> float:
    """This process's peak resident set so far [GiB] (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@dataclass
class StageLog:
    """Rows ``(stage, sizes, seconds, peak RSS max over ranks [GiB])`` and, per stage, the per-rank details
    (``details[i]``: ``{"peak_rss_gib_per_rank": [...], "arrays": {name: {"global_rows", "rows_per_rank",
    "bytes_per_rank"}}}``)."""

    rows: list[tuple[str, str, float, float]] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)
    progress: Any = None  # a structrom.rom.progress bar over the stages (rank 0), or None

    def add(self, comm, stage: str, sizes: str, seconds: float, log,
            arrays: dict[str, tuple[np.ndarray, int]] | None = None) -> None:
        """Record a stage (collective over ``comm``). ``arrays``: name -> (this rank's array, its global row
        count), the distributed arrays the stage holds (rows = first axis)."""
        mine = {k: (int(np.shape(a)[0]) if np.ndim(a) else 0, int(getattr(a, "nbytes", 0)), int(g))
                for k, (a, g) in (arrays or {}).items()}
        everyone = comm.allgather((peak_rss_gib(), mine))
        rss = max(r for r, _ in everyone)
        names = list(mine)
        self.rows.append((stage, sizes, seconds, rss))
        self.details.append({"peak_rss_gib_per_rank": [r for r, _ in everyone],
                             "arrays": {k: {"global_rows": mine[k][2],
                                            "rows_per_rank": [a[k][0] for _, a in everyone],
                                            "bytes_per_rank": [a[k][1] for _, a in everyone]} for k in names}})
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix_str(f"done: {stage}")
        log(f"offline: {stage:<22s} {sizes:<48s} {seconds:8.2f} s  peak {rss:6.2f} GiB/rank")

    def provenance(self) -> list[dict]:
        """The stages as the model's provenance lists them."""
        out = []
        for i, (s, z, t, m) in enumerate(self.rows):
            entry = {"stage": s, "sizes": z, "seconds": t, "peak_rss_gib": m}
            if i < len(self.details):
                entry.update(self.details[i])
            out.append(entry)
        return out

    def table(self) -> str:
        lines = ["| stage | sizes | time [s] | peak RSS per rank [GiB] |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {s} | {z} | {t:.2f} | {m:.2f} |" for s, z, t, m in self.rows]
        return "\n".join(lines)
