"""The model page (``GET /v1/models/{id}/page``) of a real ``structrom serve`` process: served HTML without
external resources, and, in Debian's headless Chromium, a query submitted from the page's form whose
rendered answer (trust flag, per-increment table) equals the REST answer of the same request."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import httpx
import pytest

import api_fixtures as af
from structrom.api.client import Client

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    built = af.build_small_model(root)
    models = root / "models"
    models.mkdir()
    (models / "small.h5").write_bytes(built.path.read_bytes())
    with af.ServerProcess(models) as srv:
        yield srv


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (bash run.sh setup installs Debian's chromium)")
        pytest.skip("Debian's chromium is not installed (bash run.sh setup installs it)")
    return exe


def run_chromium(args: list[str], timeout: float = 90.0) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="structrom-chromium-") as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def test_page_is_self_contained(server):
    r = httpx.get(f"{server.url}/v1/models/small/page", timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "<svg" in page and 'id="plot-pod_decay"' in page and 'id="plot-reduced_points"' in page
    # no external resource: every URL that a browser would load (src, href, xlink:href, CSS url(), @import)
    # is a fragment or a data URI
    for url in re.findall(r'(?:src|href)="([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page):
        assert url.strip("'\"").startswith(("#", "data:")), url
    assert "@import" not in page and "<link" not in page
    assert 'name="pressure.zmax"' in page and 'name="intensity"' in page
    maps = server.mapped_libraries()  # rendering the plots loads neither MPI nor PETSc into the server
    assert "libmpi" not in maps and "petsc" not in maps.lower()
    # errors stay JSON, naming the field
    r = httpx.get(f"{server.url}/v1/models/nope/page", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["field"] == "model_id"


def _script_json(dom: str, element_id: str):
    m = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', dom, re.S)
    assert m, f"no <script id={element_id}> in the page"
    return json.loads(html.unescape(m.group(1)))


def test_query_from_the_page_matches_rest(server, tmp_path):
    query = "pressure.zmax=0.04&intensity=0.25&shape=%5B%5B0%2C0%5D%2C%5B1%2C1%5D%5D&end_time=1&increments=4&submit=1"
    url = f"{server.url}/v1/models/small/page?{query}"
    proc = run_chromium(["--virtual-time-budget=30000", "--dump-dom", url])
    dom = proc.stdout
    assert 'id="status">done<' in dom, f"the page did not finish the query:\n{proc.stderr[-3000:]}\n{dom[-3000:]}"
    request, shown = _script_json(dom, "request"), _script_json(dom, "answer")
    # the form built the loading of the query parameters
    assert request["loading"]["pressure"] == {"zmax": [[0, 0], [1, 0.04]]}
    assert request["loading"]["temperature"]["intensity"] == 0.25
    assert request["loading"]["times"] == [0, 0.25, 0.5, 0.75, 1]
    with Client(server.url) as c:
        rest = c.solve("small", request["loading"], extrapolate=request["extrapolate"])
    assert shown["times"] == rest["times"]
    assert shown["trusted"] == rest["trusted"] and shown["trusted_all"] == rest["trusted_all"]
    # the same deterministic solve on the same server: equal up to the solver's tolerance
    for key in ("max_von_mises", "max_cumulated_plastic_strain", "indicator"):
        assert shown[key] == pytest.approx(rest[key], rel=1e-6, abs=1e-12), key
    # what is rendered: the trust flag and one table row per increment, at the displayed precision
    trust = re.search(r'<span id="trust" class="(ok|no)">([^<]*)<', dom)
    assert trust and (trust.group(1) == "ok") == rest["trusted_all"]
    rows = re.findall(r'<tr class="increment"><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', dom)
    assert len(rows) == len(rest["times"])
    for (t, vm, p), t_r, vm_r, p_r in zip(rows, rest["times"], rest["max_von_mises"],
                                          rest["max_cumulated_plastic_strain"]):
        assert float(t) == pytest.approx(t_r, rel=1e-3)
        assert float(vm) == pytest.approx(vm_r, rel=1e-5)
        assert float(p) == pytest.approx(p_r, rel=1e-5, abs=1e-12)
    assert dom.count("<polyline") >= 2  # the response curves drawn by the page


def test_page_screenshot(server, tmp_path):
    shot = tmp_path / "page.png"
    url = f"{server.url}/v1/models/small/page?pressure.zmax=0.04&intensity=0.25&shape=%5B%5B0%2C0%5D%2C%5B1%2C1%5D%5D&submit=1"
    proc = run_chromium(["--virtual-time-budget=30000", "--window-size=1200,2400", f"--screenshot={shot}", url])
    assert shot.exists(), proc.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one


def test_form_defaults_lie_in_the_training_ranges():
    """The form's defaults are a loading of the family: a first click is not an extrapolation. Pressure
    ranges that hold 0 come from load-unload amplitudes: the default peak is 80 % of the extreme."""
    from structrom.api.model_page import form_fields

    card = {"loading_schema": {
        "times": {"end_range": [2.0, 2.0]},
        "temperature": {"type": "hot_spot", "ranges": {"center": [[40.0, 40.0], [20.0, 20.0], [2.5, 2.5]],
                                                       "radius": [10.0, 10.0], "intensity": [200.0, 450.0],
                                                       "reference": [20.0, 20.0]}},
        "pressure": {"right": {"range": [-250.0, 0.0]}, "top": {"range": [0.03, 0.05]}}},
        "training": [{"file": "a.h5", "increments": 16}, ["not", "a", "dict"]]}
    values = {f["name"]: f["value"] for f in form_fields(card)}
    assert values["end_time"] == 2.0 and values["increments"] == 16
    assert json.loads(values["shape"]) == [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]
    assert values["intensity"] == 325.0 and values["center.x"] == 40.0 and values["reference"] == 20.0
    assert values["pressure.right"] == -200.0 and values["pressure.top"] == pytest.approx(0.04)
    card["loading_schema"]["temperature"]["ranges"].pop("reference")  # no range: the server's default
    assert "reference" not in {f["name"] for f in form_fields(card)}
