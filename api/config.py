"""Server configuration: a TOML file read into :class:`ServerConfig`; command-line flags override it.

Example (every key optional; the values shown are the defaults)::

    host = "127.0.0.1"
    port = 8000
    models_dir = "models"                 # model files <id>.h5 + index.sqlite (metadata, query log)
    keys_file = ""                        # one API key per line ('#' comments); "" = none
    keys_env = "STRUCTROM_API_KEYS"       # env var with comma-separated API keys (added to the file's)
    read_requires_key = false             # reads (list, card, solve...) need a key too
    max_request_bytes = 8388608           # JSON bodies and nodal-temperature uploads (413 above)
    max_model_bytes = 1073741824          # model uploads (PUT /v1/models/{id})
    max_model_expanded_bytes = 8589934592 # a model file's datasets once decompressed (checked before reading)
    cache_models = 8                      # loaded models kept in memory (LRU) ...
    cache_bytes = 1073741824              # ... and their total estimated size
    workers = 2                           # solver processes (every file read and solve runs there)
    max_batch = 256                       # loadings per batch request
    sync_batch_max = 16                   # larger batches are answered 202 + job location
    max_increments = 2000                 # increments per loading
    max_response_bytes = 536870912        # a /fields answer's arrays, estimated before the solve (413 above)
    max_inflight = 64                     # requests in flight + unfinished jobs (429 + Retry-After above)
    request_timeout_seconds = 120         # deadline of one solver task (503 deadline_exceeded, process restarted)
    max_jobs = 1024                       # jobs stored (pending + finished); full: 429, never early eviction
    max_jobs_per_client = 64              # of which one client's (its API key, else its address): 429 above
    job_store_bytes = 268435456           # bytes of stored job requests and results (index.sqlite)
    job_ttl_seconds = 3600                # finished jobs are forgotten after this
    job_chunk = 8                         # loadings per solver task of a batch job (interleaved with requests)
    query_log_rows = 100000               # rows kept in the SQLite query log
    header_timeout_seconds = 10           # a request's headers must arrive within this (else closed)
    body_timeout_seconds = 30             # longest pause between two pieces of a request body (or of a
                                          # response: a client that stops reading is dropped)
    keep_alive_seconds = 5                # idle keep-alive connections are closed after this
    max_idle_connections = 256            # connections waiting for the client; above, the oldest is closed
    max_header_bytes = 65536              # request line + headers (431 above)
    max_connections = 2048                # open connections (503 above)

Without any API key configured, writes (model upload / delete) are refused (403): a fresh server is
read-only until a key is set.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from structrom.mpi.errors import StructromError

DEFAULT_PORT = 8000


class ConfigError(StructromError, ValueError):
    """A bad server configuration (file or flags); the message names the key."""


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    models_dir: Path = Path("models")
    keys_file: Path | None = None
    keys_env: str = "STRUCTROM_API_KEYS"
    read_requires_key: bool = False
    max_request_bytes: int = Field(8 * 2**20, ge=1024)
    max_model_bytes: int = Field(2**30, ge=1024)
    max_model_expanded_bytes: int = Field(8 * 2**30, ge=1024)
    cache_models: int = Field(8, ge=1)
    cache_bytes: int = Field(2**30, ge=1)
    workers: int = Field(2, ge=1, le=64)
    max_batch: int = Field(256, ge=1)
    sync_batch_max: int = Field(16, ge=1)
    max_increments: int = Field(2000, ge=1)
    max_response_bytes: int = Field(512 * 2**20, ge=1024)
    max_inflight: int = Field(64, ge=1)
    request_timeout_seconds: float = Field(120.0, gt=0)
    max_jobs: int = Field(1024, ge=1)
    max_jobs_per_client: int = Field(64, ge=1)
    job_store_bytes: int = Field(256 * 2**20, ge=1024)
    job_ttl_seconds: float = Field(3600.0, gt=0)
    job_chunk: int = Field(8, ge=1)
    query_log_rows: int = Field(100_000, ge=0)
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(30.0, gt=0)
    keep_alive_seconds: float = Field(5.0, gt=0)
    max_idle_connections: int = Field(256, ge=1)
    max_header_bytes: int = Field(65536, ge=1024)
    max_connections: int = Field(2048, ge=1)

    def api_keys(self) -> list[str]:
        """Keys from ``keys_file`` (one per line, ``#`` comments) and the ``keys_env`` variable."""
        keys: list[str] = []
        if self.keys_file is not None and str(self.keys_file):
            try:
                text = Path(self.keys_file).read_text()
            except OSError as exc:
                raise ConfigError(f"keys_file {self.keys_file}: {exc}") from None
            keys += [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        keys += [k.strip() for k in os.environ.get(self.keys_env, "").split(",")]
        keys = [k for k in keys if k]
        short = [k for k in keys if len(k) < 16]
        if short:
            raise ConfigError(f"{len(short)} API key(s) shorter than 16 characters: use long random keys "
                              "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        return keys


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ServerConfig:
    """Read the TOML file ``path`` (if given), apply ``overrides`` (non-None values), validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: server configuration file not found") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the server configuration ({exc.strerror or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        if data.get("keys_file") == "":
            data["keys_file"] = None
        base = Path(path).resolve().parent
        for key in ("models_dir", "keys_file"):  # relative paths are relative to the file
            if isinstance(data.get(key), str) and data[key] and not os.path.isabs(data[key]):
                data[key] = str(base / data[key])
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ServerConfig(**data)
    except ValidationError as exc:
        from structrom.rom.config import format_validation_error

        raise ConfigError("; ".join(format_validation_error(str(path or "configuration"), exc, ServerConfig)
                                    .splitlines())) from None
