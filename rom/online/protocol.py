"""The one online-model interface: what the API, the client and the examples may rely on for any model kind.

Three implementations: :class:`structrom.rom.online.ReducedModel` (``kind = "hyper_reduced"``: nonlinear, a query
is a loading history, the indicator is a Gappy residual per increment),
:class:`structrom.rom.online.separated.SeparatedModel` (``kind = "separated"``: linear, a query is a parameter value,
the indicator is a relative residual-based error estimate) and
:class:`structrom.rom.online.dictionary.DictionaryModel` (``kind = "dictionary"``: local hyper-reduced models chosen
by a classifier, a query is a loading). :func:`load_model` opens a model file of any kind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class OnlineAnswer(Protocol):
    """What ``solve`` returns: ``indicator`` (float or ``(n_inc,)``), ``trusted`` (bool or ``(n_inc,)``), and
    a JSON ``summary()``."""

    indicator: Any
    trusted: Any

    def summary(self) -> dict: ...


@runtime_checkable
class OnlineModel(Protocol):
    """An online model. ``query``: a loading (dict or :class:`~structrom.rom.loading.Loading`) for the hyper-reduced
    and dictionary kinds, a parameter value (``{name: value}`` or a sequence) for the separated kind.

    * ``kind``: ``"hyper_reduced"``, ``"separated"`` or ``"dictionary"``;
    * ``parameters``: ``{name: (lo, hi)}`` training ranges (for the hyper-reduced kind, the ranges of its
      ``loading_schema`` flattened, e.g. ``"temperature.intensity"``, ``"pressure.<surface>"``);
    * ``loading_schema``: the JSON schema of accepted queries;
    * ``check(query, extrapolate=False) -> list[str]``: raises on malformed or (without ``extrapolate``)
      out-of-family queries, returns the accepted violations;
    * ``solve(query, extrapolate=False) -> OnlineAnswer``; ``estimate_error(query)``: the indicator alone;
    * ``card() -> dict``: JSON description, with ``kind`` and ``indicator`` (what it guarantees).
    """

    kind: str

    @property
    def parameters(self) -> dict[str, tuple[float, float]]: ...

    @property
    def loading_schema(self) -> dict: ...

    def check(self, query, *, extrapolate: bool = False) -> list[str]: ...

    def solve(self, query, *, extrapolate: bool = False) -> OnlineAnswer: ...

    def estimate_error(self, query, *, extrapolate: bool = False): ...

    def card(self) -> dict: ...


def schema_parameters(schema: dict) -> dict[str, tuple[float, float]]:
    """``{name: (lo, hi)}`` of every range in a hyper-reduced ``loading_schema`` (vector ranges get
    ``.x``/``.y``/``.z`` suffixes)."""
    out: dict[str, tuple[float, float]] = {}

    def add(name: str, rng) -> None:
        if isinstance(rng, (list, tuple)) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng):
            out[name] = (float(rng[0]), float(rng[1]))
        elif isinstance(rng, (list, tuple)) and len(rng) == 3:
            for axis, r in zip("xyz", rng):
                add(f"{name}.{axis}", r)

    temp = schema.get("temperature") or {}
    for key, rng in (temp.get("ranges") or {}).items():
        add(f"temperature.{key}", rng)
    if "value_range" in temp:
        add("temperature.value", temp["value_range"])
    for key in ("pressure", "displacement"):
        for name, spec in (schema.get(key) or {}).items():
            add(f"{key}.{name}", (spec or {}).get("range"))
    add("centrifugal.omega", (schema.get("centrifugal") or {}).get("omega_range"))
    add("gravity", (schema.get("gravity") or {}).get("range"))
    add("times.end", (schema.get("times") or {}).get("end_range"))
    return out


def _file_format(path) -> str | None:
    """The root ``format`` attribute of an HDF5 file (None when unreadable: the loaders say why)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
    except (OSError, ValueError):
        return None
    return fmt.decode() if isinstance(fmt, bytes) else (None if fmt is None else str(fmt))


def file_kind(path: str | Path) -> str:
    """The kind of the model file at ``path``: ``"dictionary"`` (format ``structrom-model-dictionary``) or the
    ``kind`` attribute of a reduced model file (format and version checked; raises
    :class:`~structrom.rom.model_file.ModelFileError`). Root attributes only: nothing else is read."""
    from structrom.rom.model_file import read_kind

    from .dictionary import FORMAT as DICTIONARY_FORMAT

    if _file_format(path) == DICTIONARY_FORMAT:
        return "dictionary"
    return read_kind(path)


def load_model(path: str | Path, **kwargs) -> OnlineModel:
    """Open a model file of any kind: :class:`~structrom.rom.online.ReducedModel` (``hyper_reduced``),
    :class:`~structrom.rom.online.separated.SeparatedModel` (``separated``) or
    :class:`~structrom.rom.online.dictionary.DictionaryModel` (``dictionary``). Raises
    :class:`~structrom.rom.model_file.ModelFileError`."""
    kind = file_kind(path)
    if kind == "dictionary":
        from .dictionary import DictionaryModel

        return DictionaryModel.load(path)
    if kind == "separated":
        from .separated import SeparatedModel

        return SeparatedModel.load(path, **kwargs)
    from .model import ReducedModel

    return ReducedModel.load(path, **kwargs)
