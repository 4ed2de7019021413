"""``POST /v1/models/{id}/enrich`` against a real ``structrom serve`` process: refused without a (valid)
key; a failed HF solve (ccx exiting non-zero) fails the job and leaves the published model untouched; a
successful job publishes version 2, the registry still lists one model and its card the history; the same for
a model with prescribed displacements."""
from __future__ import annotations

import json
import os
import time

import httpx
import numpy as np
import pytest

import api_fixtures as af
import offline_fixtures as F


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("api_enrich")
    F.enrichment_setup(root)
    models = root / "models"
    models.mkdir()
    (models / "bar.h5").write_bytes((root / "model.h5").read_bytes())
    fake = root / "bin"
    fake.mkdir()
    (fake / "ccx").write_text("#!/bin/sh\necho 'fake ccx: *ERROR' >&2\nexit 3\n")
    (fake / "ccx").chmod(0o755)
    return models, json.loads((root / "loadings.json").read_text()), fake


def _wait(srv, key: str, location: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(srv.url + location, headers={"X-API-Key": key}, timeout=10).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {location} not finished after {timeout} s")


def test_enrich_endpoint(models):
    models_dir, loadings, fake = models
    key = af.new_key()
    env = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}  # `ccx` fails with exit code 3
    url = "/v1/models/bar/enrich"
    with af.ServerProcess(models_dir, keys=[key], env=env) as srv:
        r = httpx.post(srv.url + url, json={"loadings": loadings}, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        r = httpx.post(srv.url + url, json={"loadings": loadings}, headers={"X-API-Key": "wrong-key-0123456789"},
                       timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(srv.url + url, json={"loadings": []}, headers={"X-API-Key": key}, timeout=10)
        assert r.status_code == 422 and r.json()["error"]["field"] == "loadings"

        before = (models_dir / "bar.h5").read_bytes()
        r = httpx.post(srv.url + url, json={"loadings": loadings, "solver": "calculix"},
                       headers={"X-API-Key": key}, timeout=10)
        assert r.status_code == 202
        job = _wait(srv, key, r.headers["Location"])
        assert job["status"] == "failed" and "new_1" in job["error"]["message"], job
        assert "unchanged" in job["error"]["message"]
        assert (models_dir / "bar.h5").read_bytes() == before
        card = httpx.get(srv.url + "/v1/models/bar", timeout=10).json()
        assert [v["version"] for v in card["versions"]] == [1]

        r = httpx.post(srv.url + url, json={"loadings": loadings}, headers={"Authorization": f"Bearer {key}"},
                       timeout=10)
        job = _wait(srv, key, r.headers["Location"])
        assert job["status"] == "done", job
        assert job["result"]["enriched"] == ["new_1"] and job["result"]["after"]["new_1"] <= F.ENRICH_TOLERANCE
        assert job["result"]["path"] == "bar.h5" and str(models_dir) not in json.dumps(job)  # no server path
        card = httpx.get(srv.url + "/v1/models/bar", timeout=10).json()
        assert [v["version"] for v in card["versions"]] == [1, 2]
        assert [a["name"] for a in card["versions"][1]["loadings_added"]] == ["new_1"]
        assert [m["id"] for m in httpx.get(srv.url + "/v1/models", timeout=10).json()["models"]] == ["bar"]
        assert (models_dir / "versions" / "bar.v1.h5").read_bytes() == before
        # the served model is the new version: the loading that was flagged is trusted now
        q = {k: v for k, v in loadings[1].items() if k != "name"}
        r = httpx.post(srv.url + "/v1/models/bar/solve", json={"loading": q, "extrapolate": True}, timeout=30)
        assert r.status_code == 200 and all(r.json()["trusted"]), r.text
    with af.ServerProcess(models_dir) as srv:  # no key configured: writes, enrichment included, are disabled
        r = httpx.post(srv.url + url, json={"loadings": loadings}, headers={"X-API-Key": key}, timeout=10)
        assert r.status_code == 403 and r.json()["error"]["code"] == "writes_disabled"


def test_enrich_endpoint_lifted_model(tmp_path):
    """A model with prescribed displacements (tests/test_lifting.py's bar) enriched over REST with an end
    deflection beyond its training range: the job HF-solves it with the deflection on the model's prescribed
    set, version 2 trusts it and answers its reaction (against the HF internal forces); a loading naming a set
    the model does not prescribe fails the job with a message naming it (the model untouched)."""
    from test_lifting import TRAINING, _hifi, _loading, _offline, _rel, hf_reaction

    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.fem.structured import box

    write_mesh_inp(tmp_path / "bar.inp", box((10.0, 2.0, 2.0), (8, 2, 2), element="C3D8"))
    files = [str(_hifi(tmp_path, f"train_{i}", *p)) for i, p in enumerate(TRAINING)]
    models = tmp_path / "models"
    models.mkdir()
    (models / "lifted.h5").write_bytes(_offline(tmp_path, files, 1e-6, 1e-6, "lifted.h5").read_bytes())
    new = dict(_loading(0.2, -1.0), name="deeper")
    key = af.new_key()
    url, headers = "/v1/models/lifted/enrich", {"X-API-Key": key}
    with af.ServerProcess(models, keys=[key]) as srv:
        bad = {"name": "sideways", "times": new["times"], "displacement": {"ymax": [[0, 0], [1, 0.1]]}}
        r = httpx.post(srv.url + url, json={"loadings": [new, bad]}, headers=headers, timeout=10)
        job = _wait(srv, key, r.headers["Location"])
        assert job["status"] == "failed" and "sideways" in job["error"]["message"], job
        assert "ymax" in job["error"]["message"] and not (models / "versions").exists()
        r = httpx.post(srv.url + url, json={"loadings": [new]}, headers=headers, timeout=10)
        job = _wait(srv, key, r.headers["Location"])
        assert job["status"] == "done", job
        res = job["result"]
        assert res["enriched"] == ["deeper"] and res["screened"][0]["indicator"] > 0.05 >= res["after"]["deeper"]
        q = {k: v for k, v in new.items() if k != "name"}
        r = httpx.post(srv.url + "/v1/models/lifted/solve", json={"loading": q}, timeout=30)
        assert r.status_code == 200 and all(r.json()["trusted"]), r.text
        hf = models / "enrichment" / "lifted.v2" / "deeper.h5"
        reaction = np.asarray(r.json()["reactions"]["xmax.z"])
        assert _rel(reaction, hf_reaction(hf, "xmax", 2)) < 1e-6  # measured 2.7e-8 (tests/test_enrich_lifting.py)
