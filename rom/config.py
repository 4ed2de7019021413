"""Reading TOML configuration files into pydantic models, with one-line errors naming file and field."""
from __future__ import annotations

import difflib
import os
import tempfile
import typing
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from structrom.mpi.errors import StructromError


class ConfigError(StructromError, ValueError):
    """A configuration file is unreadable or invalid. ``str()`` is one line per problem."""


M = TypeVar("M", bound=BaseModel)


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model whose table holds the key at ``loc`` (the error location of an unknown key), found
    by following the field annotations (lists, dicts, optionals and unions of models); None when it is not one
    model (a plain ``dict`` table, a union the location does not decide)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return None
        if isinstance(part, int):  # an index into a list of tables: the annotation was unwrapped already
            continue
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None)
        if field is None:
            return None
        models = [t for t in _leaf_types(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        current = models[0] if len(models) == 1 else None
    return current


def _leaf_types(annotation) -> list:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for a in args for leaf in _leaf_types(a)]


def unknown_key_hint(model: type[BaseModel] | None, loc: tuple) -> str:
    """``did you mean 'newton_rtol'?`` and the allowed keys, for an unknown key at ``loc``; empty if unknown."""
    table = _model_at(model, loc) if model is not None else None
    if table is None or not loc:
        return ""
    allowed = sorted(f.alias or name for name, f in table.model_fields.items())
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} (allowed keys here: {', '.join(allowed)})"


def _missing_kind(model: type[BaseModel] | None, loc: tuple) -> str:
    """``table [a.b]`` when the missing key at ``loc`` is a table (a pydantic model), else ``key``."""
    table = _model_at(model, loc) if model is not None and loc else None
    field = table.model_fields.get(str(loc[-1])) if table is not None else None
    if field is not None and any(isinstance(t, type) and issubclass(t, BaseModel)
                                 for t in _leaf_types(field.annotation)):
        return "table [" + ".".join(str(p) for p in loc if not isinstance(p, int)) + "]"
    return "key"


def format_validation_error(source: str, exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem, ``<source>: <field path>: <message>``; an unknown key (a typo) names the closest
    allowed key and the allowed keys of its table when ``model`` is given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + unknown_key_hint(model, tuple(err["loc"]))
        elif err["type"] == "missing":
            msg = f"required {_missing_kind(model, tuple(err['loc']))} is missing: add it"
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def load_toml(path: str | Path, model: type[M]) -> M:
    """Parse ``path`` into ``model``; raise :class:`ConfigError` naming the file and field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a TOML text file (not UTF-8: {exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, model, str(path))


def parse(data: dict, model: type[M], source: str = "config") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, model)) from None


def write_toml(path: str | Path, data: dict, comment: str | None = None) -> Path:
    """Write ``data`` (tables, arrays, strings, numbers, booleans) as TOML to ``path`` atomically
    (:func:`structrom.rom.atomic.atomic_write_text`). ``comment``: a first ``#`` line."""
    import tomli_w

    from structrom.rom.atomic import atomic_write_text

    return atomic_write_text(path, (f"# {comment}\n" if comment else "") + tomli_w.dumps(data))


def check_output_file(path: str | Path, field: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse, before any computation, an output file that is one of the run's ``inputs`` (it would be
    overwritten), a directory, or in a directory that cannot be created or written: :class:`ConfigError`
    naming ``field`` (e.g. ``"output.file"``). Creates the output's directory, as the writers do."""
    path = Path(path)
    for p in inputs:
        p = Path(p)
        if path.resolve() == p.resolve() or (path.exists() and p.exists() and os.path.samefile(path, p)):
            raise ConfigError(f"{field} {path}: is an input of this run ({p}) and would be overwritten: choose "
                              "another output file")
    if path.is_dir():
        raise ConfigError(f"{field} {path}: is a directory: give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ConfigError(f"{field} {path}: cannot write in {path.parent} ({exc.strerror or exc}): choose a "
                          "writable directory") from None
    return path


# -- keywords that the chosen mode does not read ------------------------------------------------------------------
@dataclass(frozen=True)
class ReadWhen:
    """A keyword read only when ``test(section)`` holds. ``mode``: the section's fields that decide it (shown
    with their values in the message); ``reader``: the modes that read it, as written in the file."""

    test: Callable[[BaseModel], bool]
    mode: tuple[str, ...]
    reader: str


def _toml(value) -> str:
    """``value`` as written in TOML."""
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def unread_keywords(section: BaseModel, rules: dict[str, ReadWhen]) -> list[str]:
    """The keywords given in ``section`` (its ``model_fields_set``) that its mode does not read, sorted."""
    return sorted(key for key in section.model_fields_set & rules.keys() if not rules[key].test(section))


def check_unread_keywords(cfg: BaseModel, source: str, table: dict[str, dict[str, ReadWhen]]) -> None:
    """Raise :class:`ConfigError` (one line per keyword) for every keyword of ``table`` (section, as a dotted path
    in the configuration -> keyword -> when it is read) given in the configuration file ``source`` (parsed into
    ``cfg``) that the mode chosen in its section does not read. Only the keywords the file gives count
    (``model_fields_set``): a default never triggers, and a configuration dumped with all its fields (a model's
    provenance, a snapshot's metadata) is not to be checked."""
    lines = []
    for where, rules in table.items():
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
