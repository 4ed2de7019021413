"""Screening of untrusted HDF5 files before anything reads their data.

An HDF5 file can make its reader open other files (external storage, external links, virtual datasets),
run filters that are not compiled in or decompress to many times its size (a "gzip bomb"), or hold index
arrays that send a solver outside its arrays. :func:`screen` walks a file's structure without following
links and without reading any dataset, and checks it against a schema (:class:`Schema`: the allowed
groups, datasets and attributes), with bounded decompressed sizes. :func:`structrom.rom.model_screening.screen_model`
adds the rules of the reduced model file; :func:`screen_array_upload` screens uploaded arrays.

Every failure raises :class:`UnsafeFileError` naming the object (path inside the file) and the rule; values
quoted in a message are shortened (:func:`echo`).
"""
from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass, field

import h5py
import numpy as np
from structrom.mpi.errors import StructromError

#: Filters allowed on datasets (HDF5 filter id -> name): all built into h5py, none runs user code.
ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
#: In-file storage layouts (virtual datasets read other files).
ALLOWED_LAYOUTS = {h5py.h5d.CONTIGUOUS: "contiguous", h5py.h5d.CHUNKED: "chunked", h5py.h5d.COMPACT: "compact"}
NAME = r"[A-Za-z0-9_.:-]{1,128}"


class UnsafeFileError(StructromError, ValueError):
    """An HDF5 file fails screening; the message names the object and the rule."""


@dataclass(frozen=True)
class Limits:
    """Bounds checked before any data is read (bytes are decompressed sizes: shape x item size)."""

    max_dataset_bytes: int = 2**32
    max_total_bytes: int = 2**34
    max_objects: int = 100_000
    #: of an attribute's value: its storage, or for variable-length strings the bytes of the strings
    max_attribute_bytes: int = 2**22
    #: of one chunk of a chunked dataset (HDF5 decompresses a whole chunk to read any part of it); the
    #: model writers' largest chunks are 65536 rows of a basis (a few hundred columns)
    max_chunk_bytes: int = 2**28
    #: Datasets are read for checks in blocks of at most this many bytes (or one band of whole chunks).
    block_bytes: int = 2**26


@dataclass(frozen=True)
class Schema:
    """Allowed objects: full paths (no leading ``/``; ``""`` is the root) matched by regular expressions.
    ``attributes`` maps a path pattern to the attribute names allowed there (default: none)."""

    groups: tuple[str, ...]
    datasets: tuple[str, ...]
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: dtype kinds allowed for datasets: b(ool), i(nt), u(int), f(loat)
    dataset_kinds: str = "biuf"

    def _match(self, patterns, path: str) -> bool:
        return any(re.fullmatch(p, path) for p in patterns)

    def allows_group(self, path: str) -> bool:
        return self._match(self.groups, path)

    def allows_dataset(self, path: str) -> bool:
        return self._match(self.datasets, path)

    def allowed_attributes(self, path: str) -> set[str]:
        out: set[str] = set()
        for pattern, names in self.attributes.items():
            if re.fullmatch(pattern, path):
                out.update(names)
        return out


#: The limits :func:`structrom.rom.model_file.load` screens with when given none (a server sets its own).
DEFAULT_LIMITS = Limits()


def set_default_limits(limits: Limits) -> None:
    global DEFAULT_LIMITS
    DEFAULT_LIMITS = limits


@dataclass
class Inventory:
    """What :func:`screen` found: ``datasets`` path -> (shape, dtype); ``groups`` paths; total bytes."""

    datasets: dict[str, tuple[tuple[int, ...], np.dtype]] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    total_bytes: int = 0


def _where(path: str) -> str:
    return "/" + path


_ECHO = reprlib.Repr()
_ECHO.maxstring = _ECHO.maxother = 80


def echo(value) -> str:
    """``repr(value)`` shortened to about 80 characters (values from a file quoted in a message)."""
    return _ECHO.repr(value)


def attribute_bytes(obj, name: str) -> int:
    """Bytes of attribute ``name`` of ``obj``: its storage size, and for variable-length strings (h5py's
    default for a Python ``str``, whose storage holds only references to the file's heap) the UTF-8 bytes
    of the strings themselves (read: they are at most the file's size)."""
    aid = h5py.h5a.open(obj.id, name.encode())
    size = aid.get_storage_size()
    info = h5py.check_string_dtype(aid.dtype)
    if info is not None and info.length is None:
        value = np.asarray(obj.attrs[name], dtype=object).ravel()
        size = max(size, sum(len(v.encode("utf-8", "replace")) if isinstance(v, str) else len(v) for v in value))
    return size


def check_attribute_size(obj, name: str, path: str, limits: Limits) -> None:
    """Refuse attribute ``name`` of the object at ``path`` above ``limits.max_attribute_bytes``
    (:func:`attribute_bytes`), or with no value (a null dataspace: its size cannot even be asked)."""
    if h5py.h5a.open(obj.id, name.encode()).get_space().get_simple_extent_type() == h5py.h5s.NULL:
        raise UnsafeFileError(f"{_where(path)}: attribute {name!r} has no value (an empty, null dataspace); "
                              "write a number or a string")
    size = attribute_bytes(obj, name)
    if size > limits.max_attribute_bytes:
        raise UnsafeFileError(f"{_where(path)}: attribute {name!r} holds {size} bytes, above the limit of "
                              f"{limits.max_attribute_bytes} bytes; store large data in a dataset")


def _check_attributes(obj, path: str, schema: Schema, limits: Limits) -> None:
    allowed = schema.allowed_attributes(path)
    for name in obj.attrs:
        if name not in allowed:
            raise UnsafeFileError(f"{_where(path)}: attribute {name!r} is not part of the file format "
                                  f"(allowed here: {sorted(allowed)})")
        aid = h5py.h5a.open(obj.id, name.encode())
        dt = aid.dtype
        if dt.kind not in "biufSU" and h5py.check_string_dtype(dt) is None:
            raise UnsafeFileError(f"{_where(path)}: attribute {name!r} has type {dt}; only numbers and strings "
                                  "are allowed")
        check_attribute_size(obj, name, path, limits)


def _check_dataset(dset: h5py.Dataset, path: str, schema: Schema, limits: Limits) -> int:
    dt = dset.dtype
    if dt.kind not in schema.dataset_kinds or dt.fields is not None or dt.subdtype is not None:
        raise UnsafeFileError(f"{_where(path)}: dataset type {dt} is not allowed (numbers only)")
    plist = dset.id.get_create_plist()
    layout = plist.get_layout()
    if layout not in ALLOWED_LAYOUTS:
        kind = "a virtual dataset (it reads other files)" if layout == getattr(h5py.h5d, "VIRTUAL", -1) \
            else f"storage layout {layout}"
        raise UnsafeFileError(f"{_where(path)}: {kind} is not allowed; store the data in the file")
    if plist.get_external_count() > 0:
        raise UnsafeFileError(f"{_where(path)}: external storage (data kept in another file) is not allowed; "
                              "store the data in the file")
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in ALLOWED_FILTERS:
            raise UnsafeFileError(f"{_where(path)}: filter {code} is not allowed (allowed: "
                                  f"{', '.join(sorted(ALLOWED_FILTERS.values()))})")
    shape = dset.shape
    if shape is None:
        raise UnsafeFileError(f"{_where(path)}: empty (null) dataspace")
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes > limits.max_dataset_bytes:
        raise UnsafeFileError(f"{_where(path)}: {nbytes} bytes once decompressed (shape {shape}), above the "
                              f"limit of {limits.max_dataset_bytes} bytes")
    if layout == h5py.h5d.CHUNKED:
        chunk = plist.get_chunk()
        cbytes = math.prod(chunk) * dt.itemsize
        if cbytes > limits.max_chunk_bytes:
            raise UnsafeFileError(f"{_where(path)}: chunks of {cbytes} bytes once decompressed (chunk shape "
                                  f"{tuple(chunk)}), above the limit of {limits.max_chunk_bytes} bytes; rechunk "
                                  "the dataset with smaller chunks (e.g. h5repack -l CHUNK=...)")
    return nbytes


def screen(f: h5py.File, schema: Schema, limits: Limits = Limits()) -> Inventory:
    """Walk ``f`` without following links or reading data; raise :class:`UnsafeFileError` for any link
    other than a hard link to a new object, any object or attribute outside ``schema``, virtual datasets,
    external storage, filters outside :data:`ALLOWED_FILTERS`, sizes above ``limits``, or a structure
    the HDF5 library cannot read (corrupt bytes)."""
    try:
        return _screen(f, schema, limits)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"unreadable HDF5 structure ({exc}); the file is corrupt or truncated") from None


def _screen(f: h5py.File, schema: Schema, limits: Limits) -> Inventory:
    inv = Inventory()
    seen: set[int] = set()
    stack: list[tuple[h5py.Group, str]] = [(f, "")]
    _check_attributes(f, "", schema, limits)
    inv.groups.add("")
    count = 0
    while stack:
        group, prefix = stack.pop()
        for name in group:
            path = f"{prefix}/{name}" if prefix else name
            count += 1
            if count > limits.max_objects:
                raise UnsafeFileError(f"more than {limits.max_objects} objects in the file")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UnsafeFileError(f"{_where(path)}: external link to {link.filename}:{link.path} is not "
                                      "allowed; copy the data into the file")
            if isinstance(link, h5py.SoftLink):
                raise UnsafeFileError(f"{_where(path)}: soft link to {link.path} is not allowed")
            if not isinstance(link, h5py.HardLink):
                raise UnsafeFileError(f"{_where(path)}: user-defined link is not allowed")
            info = h5py.h5o.get_info(group.id, name=name.encode())
            if info.addr in seen:
                raise UnsafeFileError(f"{_where(path)}: a second link to the same object is not allowed")
            seen.add(info.addr)
            otype = info.type
            if otype == h5py.h5o.TYPE_GROUP:
                if not schema.allows_group(path):
                    raise UnsafeFileError(f"{_where(path)}: group is not part of the file format")
                obj = group[name]
                _check_attributes(obj, path, schema, limits)
                inv.groups.add(path)
                stack.append((obj, path))
            elif otype == h5py.h5o.TYPE_DATASET:
                if not schema.allows_dataset(path):
                    raise UnsafeFileError(f"{_where(path)}: dataset is not part of the file format")
                obj = group[name]
                _check_attributes(obj, path, schema, limits)
                nbytes = _check_dataset(obj, path, schema, limits)
                inv.total_bytes += nbytes
                if inv.total_bytes > limits.max_total_bytes:
                    raise UnsafeFileError(f"the datasets hold more than {limits.max_total_bytes} bytes once "
                                          "decompressed")
                inv.datasets[path] = (tuple(obj.shape), obj.dtype)
            else:
                raise UnsafeFileError(f"{_where(path)}: object type {otype} (named datatype or other) is not "
                                      "allowed")
    return inv


def strict_json(text, what: str):
    """``json.loads`` refusing ``NaN`` / ``Infinity`` (not JSON; a served card could not be encoded),
    numbers beyond the float range (``1e400`` would read as infinity) and strings holding a lone UTF-16
    surrogate (``"\\ud800"`` parses, but no UTF-8 answer can carry it: the card would fail to encode)."""
    def refuse(token):
        raise UnsafeFileError(f"{what}: {echo(token)} is not allowed (JSON numbers must be finite)")

    def number(token: str):
        x = float(token)
        if not math.isfinite(x):
            refuse(token)
        return x

    def integer(token: str):
        x = int(token)
        try:
            float(x)
        except OverflowError:
            refuse(token)
        return x

    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        value = json.loads(text, parse_constant=refuse, parse_float=number, parse_int=integer)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafeFileError(f"{what}: a string holds the lone surrogate {echo(exc.object[exc.start:exc.end])} "
                              "(not a character; write the text as valid Unicode)") from None
    except (TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"{what}: unreadable JSON ({echo(str(exc))})") from None
    return value


# -- uploaded arrays -----------------------------------------------------------------------------------------------
ARRAY_UPLOAD_SCHEMA = Schema(groups=(), datasets=(NAME,), attributes={}, dataset_kinds="iuf")


def screen_array_upload(f: h5py.File, max_bytes: int) -> Inventory:
    """An uploaded HDF5 file of plain arrays at its root (no groups, links, attributes, external data),
    each at most ``max_bytes`` once decompressed (checked before anything is read)."""
    limits = Limits(max_dataset_bytes=max_bytes, max_total_bytes=2 * max_bytes, max_objects=16)
    return screen(f, ARRAY_UPLOAD_SCHEMA, limits)
