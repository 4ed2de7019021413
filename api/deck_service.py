"""A CalculiX deck uploaded to the service, answered by a reduced model (free of HTTP; runs in a solver
process, never in the server process).

The upload is screened first (:func:`structrom.rom.adapters.calculix_predict.screen_deck_text`: size
and line bounds, text only, ``*INCLUDE`` refused, so nothing on the server is read), written alone into a
private temporary directory and parsed there; its increments are bounded by the server's
``max_increments``. Every refusal is a 4xx :class:`~.errors.DomainError` naming the deck's line or the
loading field, with the temporary path replaced by the upload's name.
"""
from __future__ import annotations

import io
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from .errors import DomainError

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _stem(filename: str) -> str:
    stem = _SAFE.sub("_", Path(filename or "deck.inp").name)[:64]
    stem = stem[:-4] if stem.lower().endswith(".inp") else stem
    return stem.strip(".") or "deck"


def answer_deck(model, data: bytes, filename: str, *, fmt: str, extrapolate: bool, max_bytes: int,
                max_increments: int, mesh) -> tuple[bytes, str, str] | dict:
    """Answer the uploaded deck ``data`` with ``model`` (a loaded ReducedModel; ``mesh`` its mesh).
    ``fmt``: ``"json"`` (summary dict), ``"frd"`` (the ``.frd`` file) or ``"vtu"`` (a zip of one VTU per
    increment and a ``.pvd``); files come as ``(content, media type, file name)``."""
    from structrom.rom.adapters.calculix import CalculixError
    from structrom.rom.adapters.calculix_cards import DeckTooLarge
    from structrom.rom.adapters.calculix_predict import (MAX_DECK_LINES, DeckTarget, TooManySteps, deck_loading,
                                                         screen_deck_text, write_prediction)
    from structrom.rom.loading import LoadingError
    from structrom.rom.online import OnlineError, OnlineSolverError

    from .service import _answer, _finite_list, indicator_kind, loading_error, overflow_error

    name = _stem(filename)
    shown = f"{name}.inp"
    if fmt not in ("json", "frd", "vtu"):
        raise DomainError(422, "invalid_format", f"format {fmt!r}: use 'json', 'frd' or 'vtu'", "format")
    tmp = Path(tempfile.mkdtemp(prefix="structrom-deck-"))
    try:
        def refused(exc: Exception) -> DomainError:
            text = str(exc).replace(str(tmp / shown), shown).replace(str(tmp), "")
            code = "unsupported_keyword" if text.startswith("not supported:") else "invalid_deck"
            return DomainError(422, code, text, "deck")

        t0 = time.perf_counter()
        try:
            text = screen_deck_text(data, max_bytes=max_bytes, name=shown, max_steps=max_increments)
            path = tmp / shown
            path.write_text(text)
            loading, deck = deck_loading(DeckTarget.from_model(model, mesh), path, max_increments,
                                         max_lines=MAX_DECK_LINES, max_bytes=max_bytes)
        except TooManySteps as exc:
            raise DomainError(422, "too_many_increments", str(exc), "deck") from None
        except DeckTooLarge as exc:  # (its instances expand past an upload's limits)
            raise DomainError(413, "deck_too_large", refused(exc).message, "deck") from None
        except CalculixError as exc:
            raise refused(exc) from None
        except LoadingError as exc:
            raise loading_error(exc) from None
        except (ValueError, IndexError, KeyError, OverflowError) as exc:  # a malformed card the parser missed
            raise DomainError(422, "invalid_deck", f"{shown}: cannot read the deck ({type(exc).__name__}: "
                              f"{refused(exc).message})", "deck") from None
        if loading.n_increments > max_increments:
            raise DomainError(422, "too_many_increments", f"the deck has {loading.n_increments} increments; this "
                              f"server allows at most {max_increments}", "deck")
        t_parse = time.perf_counter() - t0
        try:
            result = model.solve(loading, extrapolate=extrapolate)
        except LoadingError as exc:
            raise loading_error(exc) from None
        except OnlineSolverError as exc:
            raise DomainError(422, "solver_diverged", str(exc), "deck") from None
        except OnlineError as exc:
            raise DomainError(422, "invalid_request", str(exc), "deck") from None
        except ArithmeticError as exc:
            raise overflow_error(exc, "deck") from None
        temps = loading.nodal_temperatures(loading.times, mesh.points)
        if fmt == "json":
            out = {"deck": shown, "model_sha256": getattr(model, "api_sha256", None), "times": result.times.tolist(), "indicator": _finite_list(result.indicator),
                   "trusted": result.trusted.tolist(), "trusted_all": bool(result.trusted.all()),
                   "indicator_quantity": model.indicator_quantity, "indicator_kind": indicator_kind(model),
                   "extrapolated": result.extrapolated,
                   "warnings": list(result.warnings),
                   # cards read but not used (output requests, ccx solver controls, restart files...)
                   "ignored": [{"keyword": kw, "where": where.replace(str(tmp / shown), shown), "why": why}
                               for kw, where, why in deck.ignored],
                   "loading": {"pressure": sorted(loading.pressures), "force": sorted(loading.forces),
                               "displacement": sorted(d.node_set for d in loading.displacements),
                               "centrifugal": loading.centrifugal is not None,
                               "temperature_range": [float(temps.min()), float(temps.max())]},
                   "max_von_mises": _answer(result.max_von_mises(reconstruct="stress" in result.dual_reduced),
                                            "largest von Mises stress", "deck")}
            if "cumulated_plastic_strain" in result.dual_reduced:  # never a silent null: non-finite is a 422
                out["max_cumulated_plastic_strain"] = _answer(
                    result.dual_field("cumulated_plastic_strain", None).max(axis=1), "largest cumulated plastic "
                    "strain", "deck")
            if result.reactions:
                out["reactions"] = {k: _answer(v, f"reaction on {k!r}", "deck") for k, v in result.reactions.items()}
            out["timings_ms"] = {"deck": 1e3 * t_parse, "total": 1e3 * (time.perf_counter() - t0)}
            return out
        files = write_prediction(tmp / "out", name, mesh, result, node_ids=deck.ids.node_ids,
                                 element_ids=deck.ids.element_ids, temperatures=temps[1:])
        if fmt == "frd":
            return files[0].read_bytes(), "text/plain", files[0].name
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in files[1:]:
                z.write(f, f.name)
        return buf.getvalue(), "application/zip", f"{name}_vtu.zip"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
