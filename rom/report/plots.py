"""Plots of a reduced model (matplotlib, headless Agg backend): what an engineer checks before trusting it.

* :func:`pod_decay`: singular values of the displacement snapshots (normalized by the largest), with the
  number of modes kept (the truncation of ``[pod] tolerance``);
* :func:`reduced_points`: the reduced integration points on the mesh (3D view and the projection on the
  plane of the two largest extents), ECM points sized by their weight, dual-only (zero-weight) points;
* :func:`indicator_vs_error`: error indicator against the true error on validation loadings, with the
  trust tolerance;
* :func:`response_curves`: max von Mises stress and max cumulated plastic strain against time, HF and
  reduced, per validation loading.

Every function returns a matplotlib ``Figure``; :func:`save` writes it as PNG and SVG, :func:`svg_text`
returns the SVG document (for inline use in HTML). No pyplot state is used (thread-safe under a server).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .validation import ValidationCase

#: Largest number of mesh nodes drawn as background of :func:`reduced_points` (a deterministic subsample).
MAX_BACKGROUND_NODES = 20_000


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def pod_decay(singular_values: np.ndarray, n_modes: int, tolerance: float | None = None,
              title: str = "displacement POD") -> Figure:
    """Normalized singular values ``sigma_i / sigma_1`` ``(M,)`` (descending) on a log scale, the first
    ``n_modes`` (kept) marked, the truncation drawn as a vertical line."""
    s = np.asarray(singular_values, float)
    s = s[s > 0]
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    if len(s):
        i = np.arange(1, len(s) + 1)
        rel = s / s[0]
        ax.semilogy(i[:n_modes], rel[:n_modes], "o-", color="C0", ms=4, label=f"kept ({n_modes} modes)")
        if len(s) > n_modes:
            ax.semilogy(i[n_modes:], rel[n_modes:], "o-", color="0.6", ms=3, label="discarded")
        ax.axvline(n_modes + 0.5, color="C3", ls="--", lw=1,
                   label="truncation" + (f" (tolerance {tolerance:.0e})" if tolerance else ""))
    ax.set_xlabel("mode number i")
    ax.set_ylabel(r"$\sigma_i / \sigma_1$")
    ax.set_title(f"{title}: singular value decay")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def _plane_axes(points: np.ndarray) -> tuple[int, int]:
    extent = points.max(axis=0) - points.min(axis=0)
    a, b = np.argsort(extent)[::-1][:2]
    return int(min(a, b)), int(max(a, b))


def reduced_points(mesh_points: np.ndarray, coordinates: np.ndarray, weights: np.ndarray,
                   length_unit: str = "") -> Figure:
    """Reduced integration points ``(n_rp, 3)`` with weights ``(n_rp,)`` over the mesh nodes ``(n, 3)``."""
    nodes = np.asarray(mesh_points, float)
    if len(nodes) > MAX_BACKGROUND_NODES:
        nodes = nodes[np.linspace(0, len(nodes) - 1, MAX_BACKGROUND_NODES).astype(int)]
    xyz, w = np.asarray(coordinates, float), np.asarray(weights, float)
    ecm, dual = w > 0, w <= 0
    size = 6 + 40 * np.sqrt(w / w.max()) if np.any(ecm) else np.full(len(w), 6.0)
    unit = f" [{length_unit}]" if length_unit else ""
    fig = _figure(11.0, 4.4)
    grid = fig.add_gridspec(1, 2, width_ratios=[1.25, 1.0])
    ax3 = fig.add_subplot(grid[0], projection="3d")
    ax3.scatter(*nodes.T, s=0.3, c="0.75", alpha=0.3, depthshade=False, rasterized=True)
    ax3.scatter(*xyz[ecm].T, s=size[ecm], c="C3", label=f"ECM points ({int(ecm.sum())}, size ~ weight)",
                depthshade=False)
    if np.any(dual):
        ax3.scatter(*xyz[dual].T, s=10, c="C0", marker="x", label=f"Gappy (dual) points, zero weight ({int(dual.sum())})",
                    depthshade=False)
    span = nodes.max(axis=0) - nodes.min(axis=0)
    ax3.set_box_aspect(np.maximum(span, 0.08 * span.max()))  # thin parts stay readable
    lo, hi = nodes.min(axis=0), nodes.max(axis=0)
    for k, (set_label, set_ticks) in enumerate(zip((ax3.set_xlabel, ax3.set_ylabel, ax3.set_zlabel),
                                                    (ax3.set_xticks, ax3.set_yticks, ax3.set_zticks))):
        set_label("xyz"[k] + unit, labelpad=2)
        if span[k] < 0.25 * span.max():  # a thin direction: its two ends only
            set_ticks([lo[k], hi[k]])
    ax3.view_init(elev=28, azim=-62)
    ax3.tick_params(labelsize=7)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    a, b = _plane_axes(nodes)
    ax = fig.add_subplot(grid[1])
    ax.scatter(nodes[:, a], nodes[:, b], s=0.3, c="0.75", rasterized=True)
    ax.scatter(xyz[ecm, a], xyz[ecm, b], s=size[ecm], c="C3")
    if np.any(dual):
        ax.scatter(xyz[dual, a], xyz[dual, b], s=10, c="C0", marker="x")
    ax.set_aspect("equal")
    ax.set_xlabel("xyz"[a] + unit)
    ax.set_ylabel("xyz"[b] + unit)
    ax.set_title(f"{len(w)} reduced integration points (projection)")
    return fig


def indicator_vs_error(cases: Sequence[ValidationCase], tolerance: float) -> Figure:
    """Indicator (max over increments) against the true displacement error (and p error when known), with
    the trust tolerance; each point labelled by its loading."""
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    ind = np.array([c.indicator for c in cases], float)
    eu = np.array([c.error_u for c in cases], float)
    ok = np.array([c.trusted for c in cases], bool)
    tiny = 1e-16
    ax.scatter(np.maximum(eu[ok], tiny), np.maximum(ind[ok], tiny), c="C2", marker="o", label="u error, trusted")
    ax.scatter(np.maximum(eu[~ok], tiny), np.maximum(ind[~ok], tiny), c="C3", marker="o",
               label="u error, not trusted")
    ep = [(c.error_p, c.indicator) for c in cases if c.error_p is not None]
    if ep:
        e, i = np.array(ep).T
        ax.scatter(np.maximum(e, tiny), np.maximum(i, tiny), facecolors="none", edgecolors="C0", marker="s",
                   label="p error")
    for c in cases:
        ax.annotate(c.name, (max(c.error_u, tiny), max(c.indicator, tiny)), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.axhline(tolerance, color="C3", ls="--", lw=1, label=f"trust tolerance {tolerance:.1e}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("true error (space-time relative L2)")
    ax.set_ylabel("error indicator (max over increments)")
    ax.set_title("indicator against true error on validation loadings")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def response_curves(cases: Sequence[ValidationCase], stress_unit: str = "", time_unit: str = "s",
                    max_cases: int = 4) -> Figure:
    """Max von Mises stress and max cumulated plastic strain against time: HF (lines) and reduced
    (dashed with markers), one colour per loading (the first ``max_cases``)."""
    fig = _figure(10.0, 4.0)
    ax_s, ax_p = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, c in enumerate(list(cases)[:max_cases]):
        col = f"C{k % 10}"
        ax_s.plot(c.times, c.hf_max_von_mises, "-", color=col, label=f"{c.name} HF")
        ax_s.plot(c.times, c.rom_max_von_mises, "--o", color=col, ms=3, label=f"{c.name} ROM")
        if c.hf_max_p is not None:
            ax_p.plot(c.times, c.hf_max_p, "-", color=col)
        if c.rom_max_p is not None:
            ax_p.plot(c.times, c.rom_max_p, "--o", color=col, ms=3)
    ax_s.set_xlabel(f"time [{time_unit}]")
    ax_s.set_ylabel("max von Mises" + (f" [{stress_unit}]" if stress_unit else ""))
    ax_p.set_xlabel(f"time [{time_unit}]")
    ax_p.set_ylabel("max cumulated plastic strain p")
    ax_s.set_title("HF (solid) and reduced model (dashed)")
    ax_p.set_title("HF (solid) and reduced model (dashed)")
    for ax in (ax_s, ax_p):
        ax.grid(True, alpha=0.3)
    ax_s.legend(fontsize=7)
    return fig


def save(fig: Figure, directory: str | Path, name: str, dpi: int = 120) -> list[Path]:
    """Write ``<directory>/<name>.png`` and ``.svg`` (each atomically); returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "svg"):
        path = directory / f"{name}.{ext}"
        partial = path.with_name(path.name + ".partial")
        try:
            fig.savefig(partial, format=ext, dpi=dpi)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        out.append(path)
    return out


def svg_text(fig: Figure) -> str:
    """The figure as an SVG document (no external resources: fonts as paths)."""
    buf = io.StringIO()
    # no metadata block (date, creator): deterministic output, and no foreign URIs in the page
    fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and DOCTYPE (inline in HTML)
