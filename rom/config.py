"""Reading TOML configuration files into pydantic models, with one-line errors naming file and field."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from structrom.mpi.errors import StructromError


class ConfigError(StructromError, ValueError):
    """A configuration file is unreadable or invalid. ``str()`` is one line per problem."""


M = TypeVar("M", bound=BaseModel)


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def load_toml(path: str | Path, model: type[M]) -> M:
    """Parse ``path`` into ``model``; raise :class:`ConfigError` naming the file and field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, model, str(path))


def parse(data: dict, model: type[M], source: str = "config") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def write_toml(path: str | Path, data: dict, comment: str | None = None) -> Path:
    """Write ``data`` (tables, arrays, strings, numbers, booleans) as TOML to ``path`` atomically
    (:func:`structrom.rom.atomic.atomic_write_text`). ``comment``: a first ``#`` line."""
    import tomli_w

    from structrom.rom.atomic import atomic_write_text

    return atomic_write_text(path, (f"# {comment}\n" if comment else "") + tomli_w.dumps(data))
