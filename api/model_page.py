"""The model page: ``GET /v1/models/{id}/page``, an HTML page for engineers (read-only).

It shows the model card (sizes, units, training ranges, indicator), the model's plots (POD decay and
reduced integration points, inline SVG rendered by :mod:`structrom.rom.report`), and a form that builds
a loading of the model's family and calls ``POST /v1/models/{id}/solve`` (vanilla JavaScript, same
origin): the trust flag, the indicator and the response curves (max von Mises, max cumulated plastic
strain against time, inline SVG drawn by the script) are shown. No external resource (the page works
offline); a Content-Security-Policy forbids any. Query parameters prefill the form (names of its
inputs, e.g. ``?intensity=290&pressure.right=-185``); ``submit=1`` submits it on load. The last answer
is kept in ``<script id="answer" type="application/json">`` (and its request in ``id="request"``) for
scripts and tests.

The route is :data:`structrom.api.routes.page.router`; the plots are rendered by a solver process
(:func:`svg_figures`: the HTTP process reads no model file) and kept per model version.
"""
from __future__ import annotations

import html
import json
import secrets
import time
from typing import Any

from fastapi.responses import HTMLResponse


def svg_figures(model_path: str) -> dict[str, str]:
    """The model's plots (POD decay, reduced points) as SVG texts (runs in a solver process)."""
    from structrom.rom.report import model_figures
    from structrom.rom.report.plots import svg_text

    return {name: svg_text(fig) for name, fig in model_figures(model_path).items()}


def _json_script(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` nor HTML comment can close it)."""
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _mid(rng, default: float = 0.0) -> float:
    try:
        return 0.5 * (float(rng[0]) + float(rng[1]))
    except (TypeError, ValueError, IndexError):
        return default


def _when(stamp: Any) -> Any:
    """A POSIX time as UTC ISO 8601 (other values unchanged)."""
    if isinstance(stamp, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    return stamp


def form_fields(card: dict) -> list[dict]:
    """The form's inputs for the model's loading family: ``{name, label, value, hint}`` (values are the
    middle of the training ranges; the amplitude shape is a load-unload cycle over the training time)."""
    if card.get("query") == "parameters":  # a separated model: one input per parameter
        return [{"name": f"param.{q['name']}", "label": q["name"], "value": _mid(q.get("range")),
                 "hint": f"training range {q.get('range')}"} for q in card.get("parameters") or []]
    schema = card.get("loading_schema") or {}
    end = float(((schema.get("times") or {}).get("end_range") or [1.0, 1.0])[-1])
    increments = next((int(t["increments"]) for t in card.get("training") or []
                       if isinstance(t, dict) and isinstance(t.get("increments"), int) and t["increments"] > 0), 8)
    fields = [{"name": "end_time", "label": "end time", "value": end, "hint": f"training: {end:g}"},
              {"name": "increments", "label": "increments", "value": increments, "hint": "time steps"},
              {"name": "shape", "label": "load factor (time, factor) pairs",
               "value": json.dumps([[0.0, 0.0], [end / 2, 1.0], [end, 0.0]]),
               "hint": "applied to every load below"}]
    temp = schema.get("temperature") or {}
    ranges = temp.get("ranges") or {}
    if temp.get("type") == "hot_spot":
        center = ranges.get("center") or [[0, 0]] * 3
        for k, axis in enumerate("xyz"):
            fields.append({"name": f"center.{axis}", "label": f"hot spot centre {axis}", "value": _mid(center[k]),
                           "hint": f"training {center[k]}"})
        for key in ("radius", "intensity", "reference"):
            if key in ranges or key != "reference":  # no reference range: the server's default
                fields.append({"name": key, "label": f"hot spot {key}", "value": _mid(ranges.get(key)),
                               "hint": f"training {ranges.get(key)}"})
    elif temp.get("type") == "uniform":
        fields.append({"name": "reference", "label": "temperature reference", "value": _mid(ranges.get("reference")),
                       "hint": f"training {ranges.get('reference')}"})
        fields.append({"name": "amplitude", "label": "temperature peak", "value": _mid(ranges.get("amplitude")),
                       "hint": f"training {ranges.get('amplitude')}"})
    for surface, spec in sorted((schema.get("pressure") or {}).items()):
        rng = (spec or {}).get("range") or [0.0, 0.0]
        lo, hi = float(rng[0]), float(rng[1])
        # a range holding 0 comes from load-unload amplitudes: default to 80 % of its extreme peak
        value = 0.8 * (lo if abs(lo) >= abs(hi) else hi) if lo <= 0.0 <= hi else 0.5 * (lo + hi)
        fields.append({"name": f"pressure.{surface}", "label": f"pressure peak on {surface}",
                       "value": value, "hint": f"training values in {rng}"})
    if "centrifugal" in schema:
        fields.append({"name": "omega", "label": "angular velocity peak",
                       "value": _mid(schema["centrifugal"].get("omega_range")),
                       "hint": f"training {schema['centrifugal'].get('omega_range')}"})
    return fields


def render(card: dict, svgs: dict[str, str], nonce: str) -> str:
    """The page's HTML."""
    e = html.escape
    mid = card["id"]
    sizes = card.get("sizes") or {}
    units = card.get("units") or {}
    ind = card.get("indicator") or {}
    kind = card.get("kind", "hyper_reduced")
    rows = [("kind", kind), ("modes", sizes.get("modes"))]
    if kind == "separated":
        rows += [("matrix terms (EIM)", sizes.get("matrix_terms")), ("rows (exported dofs)", sizes.get("dofs")),
                 ("parameters", ", ".join(f"{q['name']} in {q['range']}" for q in card.get("parameters") or [])),
                 ("training parameter values", len(card.get("training") or []))]
    else:
        rows += [("reduced integration points", sizes.get("reduced_points")),
                 ("mesh", f"{sizes.get('mesh_nodes')} nodes, {sizes.get('mesh_elements')} elements, "
                          f"{sizes.get('dofs')} dofs"),
                 ("surfaces (pressure)", ", ".join(card.get("surfaces") or []) or "-"),
                 ("training loadings", len(card.get("training") or []))]
    if kind == "dictionary":
        rows += [("local models", ", ".join(f"{m['name']} ({m['modes']} modes, {m['reduced_points']} points)"
                                            for m in card.get("local_models") or []))]
    rows += [("indicator", f"{ind.get('quantity')}, trusted when <= {ind.get('tolerance')}"),
             ("indicator guarantee", ind.get("guarantee") or "-"),
             ("units", ", ".join(f"{k}: {v}" for k, v in units.items())),
             ("published", _when(card.get("published"))), ("sha256", card.get("sha256"))]
    card_rows = "\n".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    inputs = "\n".join(
        f'<label>{e(f["label"])} <input name="{e(f["name"])}" value="{e(str(f["value"]))}" '
        f'{"" if f["name"] == "shape" else "inputmode=decimal"}><small>{e(f["hint"])}</small></label>'
        for f in form_fields(card))
    plots = "\n".join(f'<figure id="plot-{e(name)}">{svg}</figure>' for name, svg in svgs.items())
    config = {"model": mid, "query": card.get("query", "loading"),
              "parameters": [q["name"] for q in card.get("parameters") or []], "stress_unit": units.get("stress", ""), "time_unit": units.get("time", "s"),
              "temperature": ((card.get("loading_schema") or {}).get("temperature") or {}).get("type"),
              "surfaces": sorted(((card.get("loading_schema") or {}).get("pressure") or {}))}
    return PAGE.format(
        title=e(mid), card_rows=card_rows, inputs=inputs, plots=plots, nonce=nonce,
        schema=e(json.dumps(card.get("loading_schema"), indent=1)), config=_json_script(config))


PATH = "/v1/models/{model_id}/page"


def page_response(card: dict, svgs: dict[str, str]) -> HTMLResponse:
    """The page with its security headers (no external resource, inline scripts by nonce only)."""
    nonce = secrets.token_urlsafe(16)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:; "
           "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(render(card, svgs, nonce), headers={
        "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>structrom model {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd; }}
figure {{ margin: 0.5em 0; }} figure svg {{ max-width: 100%; height: auto; }}
form label {{ display: grid; grid-template-columns: 16em 14em auto; gap: 0.5em; margin: 2px 0; }}
form small {{ color: #777; }}
#trust.ok {{ color: #060; font-weight: bold; }} #trust.no {{ color: #a00; font-weight: bold; }}
#error {{ color: #a00; white-space: pre-wrap; }} .curves svg {{ border: 1px solid #ccc; margin-right: 1em; }}
</style></head>
<body>
<h1>Reduced model <code>{title}</code></h1>
<h2>Model card</h2>
<table id="card">{card_rows}</table>
<details><summary>training ranges (loading schema)</summary><pre>{schema}</pre></details>
<h2>Plots</h2>
{plots}
<h2>Query the model</h2>
<form id="query">
{inputs}
<label>solve outside the training ranges <input type="checkbox" name="extrapolate"><small>then check the indicator</small></label>
<label>API key (if reads need one) <input type="password" name="api_key" autocomplete="off"><small>sent as X-API-Key</small></label>
<button type="submit" id="solve">Solve</button>
</form>
<p id="status"></p><p id="error"></p>
<section id="result" hidden>
<p>Trust: <span id="trust"></span> &mdash; indicator max <span id="indicator-max"></span>
(tolerance <span id="tolerance"></span>); solve <span id="solve-ms"></span> ms on the server.</p>
<div class="curves"><span id="curve-von-mises"></span><span id="curve-p"></span></div>
<table id="increments"></table>
</section>
<script id="config" type="application/json">{config}</script>
<script id="request" type="application/json">null</script>
<script id="answer" type="application/json">null</script>
<script nonce="{nonce}">
"use strict";
const cfg = JSON.parse(document.getElementById("config").textContent);
const form = document.getElementById("query");
const num = (name) => {{ const v = Number(form.elements[name].value); if (!Number.isFinite(v)) throw new Error(name + ": not a number"); return v; }};
function loading() {{
  const end = num("end_time"), n = Math.round(num("increments"));
  if (!(end > 0) || !(n >= 1)) throw new Error("end time must be > 0 and increments >= 1");
  const shape = JSON.parse(form.elements["shape"].value);
  const scaled = (peak) => shape.map(([t, f]) => [t, f * peak]);
  const out = {{ times: Array.from({{ length: n + 1 }}, (_, k) => end * k / n) }};
  if (cfg.temperature === "hot_spot") {{
    out.temperature = {{ type: "hot_spot", center: ["x", "y", "z"].map((a) => num("center." + a)),
      radius: num("radius"), intensity: num("intensity"), amplitude: shape }};
    if (form.elements["reference"]) out.temperature.reference = num("reference");
  }} else if (cfg.temperature === "uniform") {{
    out.temperature = {{ type: "uniform", reference: num("reference"), amplitude: scaled(num("amplitude")) }};
  }}
  if (cfg.surfaces.length) out.pressure = Object.fromEntries(cfg.surfaces.map((s) => [s, scaled(num("pressure." + s))]));
  if (form.elements["omega"]) out.centrifugal = {{ omega: scaled(num("omega")) }};
  return out;
}}
function curve(title, unit, xs, ys) {{
  const W = 420, H = 260, L = 60, B = 40, T = 24, R = 12, NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("viewBox", `0 0 ${{W}} ${{H}}`);
  const pts = xs.map((x, i) => [x, ys[i]]).filter(([, y]) => y !== null && Number.isFinite(y));
  const x0 = Math.min(0, ...xs), x1 = Math.max(...xs), y0 = Math.min(0, ...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]), 1e-30);
  const sx = (x) => L + (x - x0) / ((x1 - x0) || 1) * (W - L - R), sy = (y) => H - B - (y - y0) / ((y1 - y0) || 1) * (H - B - T);
  const add = (tag, attrs, text) => {{ const el = document.createElementNS(NS, tag); for (const k in attrs) el.setAttribute(k, attrs[k]); if (text !== undefined) el.textContent = text; svg.appendChild(el); return el; }};
  add("text", {{ x: L, y: 16, "font-size": 13 }}, title + (unit ? ` [${{unit}}]` : ""));
  add("line", {{ x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#444" }}); add("line", {{ x1: L, y1: T, x2: L, y2: H - B, stroke: "#444" }});
  for (const v of [y0, (y0 + y1) / 2, y1]) add("text", {{ x: L - 4, y: sy(v) + 4, "font-size": 10, "text-anchor": "end" }}, v.toPrecision(3));
  for (const v of [x0, (x0 + x1) / 2, x1]) add("text", {{ x: sx(v), y: H - B + 14, "font-size": 10, "text-anchor": "middle" }}, v.toPrecision(3));
  add("text", {{ x: (L + W - R) / 2, y: H - 6, "font-size": 11, "text-anchor": "middle" }}, `time [${{cfg.time_unit}}]`);
  add("polyline", {{ points: pts.map(([x, y]) => `${{sx(x)}},${{sy(y)}}`).join(" "), fill: "none", stroke: "#c33", "stroke-width": 2 }});
  for (const [x, y] of pts) add("circle", {{ cx: sx(x), cy: sy(y), r: 3, fill: "#c33" }});
  return svg;
}}
function showParameters(a) {{
  const trust = document.getElementById("trust");
  trust.textContent = a.trusted ? "trusted" : "NOT trusted (indicator above tolerance)";
  trust.className = a.trusted ? "ok" : "no";
  document.getElementById("indicator-max").textContent = a.indicator === null ? "-" : a.indicator.toExponential(3);
  document.getElementById("tolerance").textContent = a.indicator_tolerance;
  document.getElementById("solve-ms").textContent = a.timings_ms.solve.toFixed(2);
  const fmt = (v) => (v === null || v === undefined) ? "-" : Number(v).toPrecision(6);
  document.getElementById("increments").innerHTML = "<tr><th>error estimate</th><th>max displacement</th></tr>" +
    `<tr class="increment"><td>${{fmt(a.error_estimate)}}</td><td>${{fmt(a.max_displacement)}}</td></tr>`;
  document.getElementById("result").hidden = false;
}}
function show(a) {{
  document.getElementById("answer").textContent = JSON.stringify(a);
  if (cfg.query === "parameters") return showParameters(a);
  const trust = document.getElementById("trust");
  trust.textContent = a.trusted_all ? "trusted" : "NOT trusted (indicator above tolerance)";
  trust.className = a.trusted_all ? "ok" : "no";
  const ind = a.indicator.filter((v) => v !== null);
  document.getElementById("indicator-max").textContent = Math.max(...ind).toExponential(3);
  document.getElementById("tolerance").textContent = a.indicator_tolerance;
  document.getElementById("solve-ms").textContent = a.timings_ms.solve.toFixed(1);
  const vm = document.getElementById("curve-von-mises"), p = document.getElementById("curve-p");
  vm.replaceChildren(curve("max von Mises", cfg.stress_unit, a.times, a.max_von_mises));
  p.replaceChildren(a.max_cumulated_plastic_strain ? curve("max cumulated plastic strain", "", a.times, a.max_cumulated_plastic_strain) : "");
  const tab = document.getElementById("increments");
  const head = "<tr><th>time</th><th>max von Mises</th><th>max p</th><th>indicator</th><th>trusted</th></tr>";
  const fmt = (v, d) => (v === null || v === undefined) ? "-" : Number(v).toPrecision(d);
  tab.innerHTML = head + a.times.map((t, k) => `<tr class="increment"><td>${{fmt(t, 4)}}</td><td>${{fmt(a.max_von_mises[k], 6)}}</td>` +
    `<td>${{fmt(a.max_cumulated_plastic_strain ? a.max_cumulated_plastic_strain[k] : null, 6)}}</td><td>${{fmt(a.indicator[k], 3)}}</td><td>${{a.trusted[k] ? "yes" : "no"}}</td></tr>`).join("");
  document.getElementById("result").hidden = false;
}}
async function submit(ev) {{
  if (ev) ev.preventDefault();
  const status = document.getElementById("status"), error = document.getElementById("error");
  error.textContent = ""; status.textContent = "solving...";
  try {{
    const headers = {{ "Content-Type": "application/json" }};
    if (form.elements["api_key"].value) headers["X-API-Key"] = form.elements["api_key"].value;
    const query = cfg.query === "parameters" ? {{ parameters: Object.fromEntries(cfg.parameters.map((n) => [n, num("param." + n)])) }}
      : {{ loading: loading() }};
    const request = {{ ...query, extrapolate: form.elements["extrapolate"].checked }};
    document.getElementById("request").textContent = JSON.stringify(request);
    const r = await fetch(`/v1/models/${{encodeURIComponent(cfg.model)}}/solve`, {{ method: "POST", headers,
      body: JSON.stringify(request) }});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? `${{body.error.status}} ${{body.error.code}}: ${{body.error.message}}` : r.statusText);
    show(body); status.textContent = "done"; document.body.dataset.state = "done";
  }} catch (exc) {{
    status.textContent = "failed"; error.textContent = String(exc.message || exc); document.body.dataset.state = "failed";
  }}
}}
form.addEventListener("submit", submit);
const params = new URLSearchParams(location.search);
for (const [k, v] of params) {{
  const el = form.elements[k];
  if (el && el.type === "checkbox") el.checked = v === "1" || v === "true"; else if (el && k !== "api_key") el.value = v;
}}
if (params.get("submit") === "1") submit();
</script>
</body></html>
"""
