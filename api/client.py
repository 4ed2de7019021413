"""A small Python client of the structrom REST service (httpx)::

    from structrom.api.client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as c:
        c.publish("bracket", "out/bracket_model.h5")
        r = c.solve("bracket", {"times": [0, 0.5, 1], "pressure": {"holes": [[0, 0], [1, 20]]}},
                    node_sets=["tip"])
        r["max_von_mises"], r["indicator"], r["trusted_all"]
        c.model("plate")["query"]                             # "parameters": a separated model
        r = c.solve("plate", parameters={"intensity": 512.0, "x_center": 41.0})
        r["error_estimate"], r["indicator"], r["trusted"]

Errors are raised as :class:`ApiError` with the server's ``status``, ``code``, ``field`` and ``message``.
With ``retries=n``, an answer 429 or 503 carrying ``Retry-After`` (server saturated, solver restarting) is
retried up to ``n`` times after the delay the server asks for.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
from structrom.mpi.errors import StructromError


class ApiError(StructromError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field, self.body = status, code, message, field, body


class Client:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None, retries: int = 0, max_wait: float = 30.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.retries, self.max_wait = retries, max_wait
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                 transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------------------------------
    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                body = r.json()
                e = body["error"]
                raise ApiError(r.status_code, e.get("code", ""), e.get("message", ""), e.get("field"), body)
            except (ValueError, KeyError, TypeError):
                raise ApiError(r.status_code, "http_error", r.text[:500]) from None
        return r

    def _request(self, method: str, url: str, **kw) -> httpx.Response:
        """One request, retried on 429 / 503 with ``Retry-After`` (``retries`` times; bodies must be
        replayable: bytes, JSON or form data, not a stream)."""
        for attempt in range(self.retries + 1):
            r = self.http.request(method, url, **kw)
            wait = r.headers.get("retry-after")
            if r.status_code not in (429, 503) or wait is None or attempt == self.retries:
                return r
            try:
                time.sleep(min(max(float(wait), 0.0), self.max_wait))
            except ValueError:
                return r
        return r

    def _json(self, method: str, url: str, **kw) -> Any:
        return self._check(self._request(method, url, **kw)).json()

    # -- service -------------------------------------------------------------------------------------------------------
    def health(self) -> dict:
        return self._json("GET", "/health")

    def ready(self) -> dict:
        return self._json("GET", "/ready")

    def metrics(self) -> str:
        return self._check(self.http.get("/metrics")).text

    def queries(self, limit: int = 100) -> list[dict]:
        return self._json("GET", "/v1/queries", params={"limit": limit})["queries"]

    # -- models ----------------------------------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        return self._json("GET", "/v1/models")["models"]

    def model(self, model_id: str) -> dict:
        return self._json("GET", f"/v1/models/{model_id}")

    def publish(self, model_id: str, path: str | Path) -> dict:
        """Upload a model file (streamed) and publish it under ``model_id``."""
        with open(path, "rb") as f:
            return self._json("PUT", f"/v1/models/{model_id}", content=f,
                              headers={"Content-Type": "application/octet-stream"})

    def delete(self, model_id: str) -> None:
        self._check(self.http.delete(f"/v1/models/{model_id}"))

    # -- queries ----------------------------------------------------------------------------------------------------------
    @staticmethod
    def _opts(extrapolate: bool, node_sets, reconstruct: bool | None, cycles=None) -> dict:
        opts = {"extrapolate": extrapolate, "node_sets": list(node_sets or [])}
        if reconstruct is not None:  # (only when the caller set it: separated models refuse it)
            opts["reconstruct"] = bool(reconstruct)
        if cycles is not None:
            opts["cycles"] = [float(t) for t in cycles]
        return opts

    @staticmethod
    def _query(loading, parameters) -> dict:
        if (loading is None) == (parameters is None):
            raise TypeError("give a loading (hyper-reduced and dictionary models) or parameters (separated models)")
        if parameters is not None:
            return {"parameters": dict(parameters) if isinstance(parameters, dict) else [float(v) for v in parameters]}
        return {"loading": loading}

    def solve(self, model_id: str, loading: dict | None = None, *, parameters=None, extrapolate: bool = False,
              node_sets=None, reconstruct: bool | None = None, cycles=None) -> dict:
        """One query, by the model's kind (its card's ``query``):

        * ``loading`` (hyper-reduced, dictionary): quantities of interest per increment (``max_von_mises``,
          ``max_cumulated_plastic_strain``, ``displacement`` per node set, ``indicator``, ``trusted``...,
          ``reactions`` on the prescribed sets of a model that has them); a dictionary adds ``local_model``,
          ``attempts``, ``fallback``; ``cycles``: cycle bounds ``[b_0, ..., b_C]`` (times of the loading) for
          the per-cycle strain range, stress amplitude, mean stress and ratcheting (``cycles`` of the answer);
          ``reconstruct``: the largest von Mises stress and p over the reconstructed fields (True, the server's
          default when left None) or over the reduced points only (False);
        * ``parameters`` (separated; ``{name: value}`` or a list in the card's order): ``coordinates``,
          ``error_estimate``, ``indicator``, ``trusted``, ``max_displacement``, ``displacement`` per node set."""
        body = {**self._query(loading, parameters), **self._opts(extrapolate, node_sets, reconstruct, cycles)}
        return self._json("POST", f"/v1/models/{model_id}/solve", json=body)

    def solve_nodal(self, model_id: str, loading: dict, temperature, *, temperature_times=None,
                    extrapolate: bool = False, node_sets=None, reconstruct: bool | None = None) -> dict:
        """Like :meth:`solve` with a nodal temperature ``(n_times, n_nodes)`` array uploaded as ``.npy``
        (or a path to a ``.npy`` / HDF5 file)."""
        import numpy as np

        if isinstance(temperature, (str, Path)):
            name, content = Path(temperature).name, Path(temperature).read_bytes()
        else:
            buf = io.BytesIO()
            np.save(buf, np.asarray(temperature, dtype=float), allow_pickle=False)
            name, content = "temperature.npy", buf.getvalue()
        req = {"loading": loading, **self._opts(extrapolate, node_sets, reconstruct)}
        if temperature_times is not None:
            req["temperature_times"] = [float(t) for t in temperature_times]
        return self._json("POST", f"/v1/models/{model_id}/solve/nodal", data={"request": json.dumps(req)},
                          files={"temperature": (name, content, "application/octet-stream")})

    def solve_deck(self, model_id: str, deck, *, format: str = "json", extrapolate: bool = False):
        """Answer a CalculiX deck (a path or its bytes) with the model: the summary dict (``format="json"``)
        or the bytes of the ``.frd`` file / zip of VTU files (``"frd"``, ``"vtu"``)."""
        if isinstance(deck, (str, Path)):
            name, content = Path(deck).name, Path(deck).read_bytes()
        else:
            name, content = "deck.inp", bytes(deck)
        files = {"deck": (name, content, "text/plain")}
        data = {"format": format, "extrapolate": "true" if extrapolate else "false"}
        if format == "json":
            return self._json("POST", f"/v1/models/{model_id}/solve/deck", data=data, files=files)
        return self._check(self._request("POST", f"/v1/models/{model_id}/solve/deck", data=data, files=files)).content

    def submit(self, model_id: str, loading: dict | None = None, *, parameters=None, **opts) -> str:
        """Start a solve as a background job; returns the job id."""
        body = {**self._query(loading, parameters), **self._opts(opts.get("extrapolate", False), opts.get("node_sets"),
                                                 opts.get("reconstruct"), opts.get("cycles"))}
        r = self._check(self._request("POST", f"/v1/models/{model_id}/solve", json=body, params={"background": "true"}))
        return r.json()["job"]

    def batch(self, model_id: str, loadings: list[dict] | None = None, *, parameters: list | None = None,
              extrapolate: bool = False, node_sets=None, reconstruct: bool | None = None, cycles=None,
              background: bool = False, wait: bool = True, timeout: float = 600.0) -> dict:
        """Solve many loadings (or, for a separated model, many ``parameters`` values). The server answers large
        batches with a job; with ``wait`` the job is polled until done and its result returned (else
        ``{"job": id}``)."""
        if (loadings is None) == (parameters is None):
            raise TypeError("give loadings (hyper-reduced and dictionary models) or parameters (separated models)")
        query = {"loadings": loadings} if loadings is not None else {
            "parameters": [dict(p) if isinstance(p, dict) else [float(v) for v in p] for p in parameters]}
        body = {**query, **self._opts(extrapolate, node_sets, reconstruct, cycles)}
        r = self._check(self._request("POST", f"/v1/models/{model_id}/batch", json=body,
                                      params={"background": "true"} if background else None))
        if r.status_code == 202:
            job = r.json()["job"]
            return self.wait(job, timeout=timeout) if wait else {"job": job}
        return r.json()

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait(self, job_id: str, *, timeout: float = 600.0, poll: float = 0.05) -> Any:
        """Poll a job until it finishes; its result, or :class:`ApiError` for a failed job."""
        deadline = time.monotonic() + timeout
        while True:
            j = self.job(job_id)
            if j["status"] == "done":
                return j["result"]
            if j["status"] == "failed":
                e = j["error"] or {}
                raise ApiError(e.get("status", 500), e.get("code", "job_failed"), e.get("message", ""), e.get("field"), j)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {j['status']} after {timeout} s")
            time.sleep(poll)
            poll = min(poll * 1.5, 1.0)

    def fields(self, model_id: str, loading: dict, path: str | Path, *, format: str = "vtu", increment: int = -1,
               quantities=None, extrapolate: bool = False) -> Path:
        """Download reconstructed fields to ``path`` (``vtu``; ``xdmf``: a zip of .xdmf + .h5; ``hdf5``: every
        increment, the server refuses an ``increment`` other than the default -1 for it)."""
        body = {"loading": loading, "format": format, "extrapolate": extrapolate}
        if format != "hdf5" or increment != -1:
            body["increment"] = increment
        if quantities is not None:
            body["quantities"] = list(quantities)
        r = self._check(self._request("POST", f"/v1/models/{model_id}/fields", json=body))
        path = Path(path)
        path.write_bytes(r.content)
        return path
