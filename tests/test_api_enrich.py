"""``POST /v1/models/{id}/enrich`` against a real ``structrom serve`` process: refused without a (valid)
key; a failed HF solve (ccx exiting non-zero) fails the job and leaves the published model untouched; a
successful job publishes version 2, the registry still lists one model and its card the history."""
from __future__ import annotations

import json
import os
import time

import httpx
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
