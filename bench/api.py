"""REST service latency and throughput on loopback: ``structrom serve`` as a subprocess on 127.0.0.1 with 1
and 2 solver processes (``--workers``), 1, 8 and 32 concurrent clients (asyncio, one keep-alive connection
each: a minimal HTTP/1.1 client, so that the figures are the server's; one more 1-client row through
httpx), for a small model and a 30-mode, 300-point model; each query is a 20-increment elastoplastic
loading (pressure + hot spot, inside the training family) answered with its QoIs (max von Mises, max p,
displacement of a node set, indicator).

    .venv/bin/python bench/api.py                  # print the table
    .venv/bin/python bench/api.py --append-docs    # and write it to the "Service" section of docs/benchmarks.md
    .venv/bin/python bench/api.py --idle 1000 --append-docs   # /health under idle half-sent connections

Every load loop is bounded in count (``--requests``) and time (``--seconds`` per level). Models are built
in this process with tests/rom_fixtures.build_exact_model (HF runs: imports PETSc here, never in the
server). Target: p50 under 20 ms for the 30-mode, 300-point, 20-increment query.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

TARGET_MS = 20.0


def build_models(tmp: Path) -> dict[str, dict]:
    import numpy as np

    import api_fixtures as af
    import rom_fixtures as fx

    small = af.build_small_model(tmp, name="small.h5")
    train = [(P, I) for P in np.linspace(0.03, 0.06, 5) for I in np.linspace(0.0, 0.6, 5)]
    big = fx.build_exact_model(tmp, training=train, max_modes=30, n_reduced_points=300, pod_tolerance=1e-14,
                               name="m30.h5")
    return {"small": {"path": small.path, "modes": small.n_modes, "points": small.n_reduced_points},
            "m30": {"path": big.path, "modes": big.n_modes, "points": big.n_reduced_points}}


def query(increments: int = 20) -> dict:
    import numpy as np

    import rom_fixtures as fx

    d = fx.loading_dict(0.045, 0.4, times=np.linspace(0.0, 1.0, increments + 1).tolist())
    return {"loading": d, "node_sets": ["xmax"]}


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (one connection), so that the latencies are
    the server's and not a client library's: httpx costs ~1-2 ms of client CPU per request on this
    machine, on the same cores as the server (the ``httpx`` rows show it)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "KeepAliveClient":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def post_json(self, path: str, payload: bytes) -> tuple[int, bytes]:
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if "content-length" not in headers:
            raise RuntimeError(f"response without Content-Length: {headers}")
        return status, await self.reader.readexactly(int(headers["content-length"]))


async def level(url: str, model: str, body: dict, clients: int, max_requests: int, seconds: float,
                client: str = "keep-alive") -> dict:
    import json

    import httpx

    latencies: list[float] = []
    server_ms: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    issued = 0
    payload = json.dumps(body).encode()
    path = f"/v1/models/{model}/solve"

    async def worker():
        nonlocal issued, errors
        if client == "httpx":
            conn = httpx.AsyncClient(base_url=url, timeout=120.0)

            async def post():
                r = await conn.post(path, content=payload, headers={"Content-Type": "application/json"})
                return r.status_code, r.content
        else:
            conn = KeepAliveClient(url)

            async def post():
                return await conn.post_json(path, payload)
        async with conn:
            while issued < max_requests and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter()
                status, content = await post()
                dt = time.perf_counter() - t0
                if status != 200:
                    errors += 1
                    continue
                latencies.append(dt)
                server_ms.append(json.loads(content)["timings_ms"]["total"])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(q):
        return 1e3 * lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else float("nan")

    return {"clients": clients, "client": client, "requests": len(lat), "errors": errors, "p50": pct(0.5), "p99": pct(0.99),
            "throughput": len(lat) / wall if wall > 0 else 0.0,
            "server_p50": statistics.median(server_ms) if server_ms else float("nan")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(srv) -> tuple[float, float]:
    """CPU seconds used so far by the HTTP process and by the solver processes of ``srv``: a measure of
    the work per request that a loaded machine's waiting does not inflate."""
    import api_fixtures as af

    return cpu_seconds(srv.proc.pid), sum(cpu_seconds(p) for p in af.solver_pids(srv))


def run(args) -> tuple[list[dict], dict]:
    import httpx

    import api_fixtures as af

    tmp = Path(tempfile.mkdtemp(prefix="structrom-bench-api-"))
    t0 = time.perf_counter()
    models = build_models(tmp)
    print(f"models built in {time.perf_counter() - t0:.1f} s: " +
          ", ".join(f"{k} ({v['modes']} modes, {v['points']} points)" for k, v in models.items()), flush=True)
    mdir = tmp / "models"
    mdir.mkdir()
    for name, m in models.items():
        os.link(m["path"], mdir / f"{name}.h5")
    rows = []
    body = query(args.increments)
    load_start = os.getloadavg()[0]
    for workers in args.workers:
        with af.ServerProcess(mdir, args=["--workers", str(workers)]) as srv:
            for name, m in models.items():
                for _ in range(3 * workers):  # warm-up: every solver process loads the model, reads the bases
                    r = httpx.post(f"{srv.url}/v1/models/{name}/solve", json=body, timeout=120)
                    r.raise_for_status()
                levels = [(c, "keep-alive") for c in args.clients] + [(1, "httpx")] * (1 in args.clients)
                for c, client in levels:
                    cpu0 = server_cpu(srv)
                    res = asyncio.run(level(srv.url, name, body, c, args.requests, args.seconds, client))
                    cpu1 = server_cpu(srv)
                    n = max(res["requests"] + res["errors"], 1)
                    res["cpu_http"], res["cpu_solver"] = (1e3 * (b - a) / n for a, b in zip(cpu0, cpu1))
                    res.update(model=name, modes=m["modes"], points=m["points"], workers=workers,
                               trusted=bool(r.json()["trusted_all"]), iterations=sum(r.json()["newton_iterations"]))
                    rows.append(res)
                    print(fmt_row(res), flush=True)
    env = {"cpus": os.cpu_count(), "load": os.getloadavg()[0], "load_start": load_start,
           "python": platform.python_version(), "workers": args.workers, "increments": args.increments}
    return rows, env


HEADER = ("| model | modes | reduced points | solver processes | clients | client | requests | p50 [ms] | p99 [ms] "
          "| throughput [req/s] | server p50 [ms] | CPU HTTP [ms/req] | CPU solver [ms/req] |")


def fmt_row(r: dict) -> str:
    return (f"| {r['model']} | {r['modes']} | {r['points']} | {r['workers']} | {r['clients']} | {r['client']} | "
            f"{r['requests']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['throughput']:.1f} | {r['server_p50']:.1f} | "
            f"{r['cpu_http']:.2f} | {r['cpu_solver']:.2f} |")


def scaling(rows: list[dict]) -> str:
    """Throughput with the most solver processes over throughput with the fewest, per model and clients."""
    ws = sorted({r["workers"] for r in rows})
    if len(ws) < 2:
        return ""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for c in sorted({r["clients"] for r in rows if r["clients"] > 1}):
            t = {r["workers"]: r["throughput"] for r in rows if r["model"] == model and r["clients"] == c
                 and r["client"] == "keep-alive"}
            if ws[0] in t and ws[-1] in t and t[ws[0]] > 0:
                out.append(f"{model}, {c} clients: {t[ws[-1]] / t[ws[0]]:.2f}x")
    return f"Throughput from {ws[0]} to {ws[-1]} solver processes: " + "; ".join(out) + "."


def report(rows: list[dict], env: dict, args) -> str:
    one = [r for r in rows if r["model"] == "m30" and r["clients"] == 1 and r["client"] == "keep-alive"]
    via_httpx = [r for r in rows if r["model"] == "m30" and r["clients"] == 1 and r["client"] == "httpx"]
    p50s = ", ".join(f"{r['p50']:.1f} ms with {r['workers']} solver process(es)" for r in one)
    met = ("met" if all(r["p50"] < TARGET_MS for r in one) else
           "NOT met" if all(r["p50"] >= TARGET_MS for r in one) else "met only in part") if one else "not measured"
    lines = [
        "## Service",
        "",
        f"`{' '.join(['.venv/bin/python', 'bench/api.py', *sys.argv[1:]])}`: `structrom serve` on 127.0.0.1 "
        f"(its HTTP process and {' or '.join(str(w) for w in env['workers'])} solver processes), asyncio clients on "
        f"the same machine ({env['cpus']} cores, load average {env['load_start']:.1f} at the start and "
        f"{env['load']:.1f} at the end), one `POST /v1/models/{{id}}/solve` per request: a "
        f"{env['increments']}-increment elastoplastic loading (pressure + hot spot inside the training family) "
        "with max von Mises and max p over the reconstructed fields, the displacement of node set `xmax`, the "
        f"indicator. At most {args.requests} requests and {args.seconds:g} s per row. `server p50`: time "
        "spent in the solve and the QoIs, as the server reports it (`timings_ms.total`). Client `keep-alive`: "
        "one HTTP/1.1 connection per client, raw asyncio streams (bench/api.py `KeepAliveClient`), so that the "
        "latency is the server's; `httpx`: the same query through `httpx.AsyncClient`, whose own cost per request "
        "(on the same 2 cores) is the difference. `CPU HTTP` / `CPU solver`: CPU time of the server's HTTP process / "
        "of its solver processes per request over the row (from /proc): the work per request, which a loaded "
        "machine's waiting does not inflate; on an idle machine with `c` cores the throughput bound is about "
        "min(solver processes, c) / CPU solver, and 1 / CPU HTTP.",
        "",
        HEADER,
        "|" + "---|" * 13,
        *[fmt_row(r) for r in rows],
        "",
        scaling(rows),
        "",
        f"Target p50 < {TARGET_MS:g} ms for the 30-mode, 300-point, {env['increments']}-increment query with one "
        f"client: **{met}** ({p50s}" + (f"; {via_httpx[0]['p50']:.1f} ms through httpx" if via_httpx else "")
        + "). The HTTP layer and the hand-off to a solver process (a pipe; request and answer pickled) add "
        "the difference between p50 and server p50; "
        "the rest is the online solve itself (`structrom.rom.online`, Newton iterations over the reduced points: see "
        "`result.timings`: constitutive law at the reduced points `law`, reduced tangents and solves `linear`). With more clients than "
        "solver processes, requests queue: latency grows with the number of clients, throughput is bounded by "
        "the solver processes and cores (the clients and the HTTP process share the same cores).",
        "",
    ]
    return "\n".join(lines)


async def idle_connections(url: str, n: int, probes: int = 20) -> dict:
    """Open ``n`` connections that send half a request and stop (half of them mid-headers, half mid-body),
    then time ``probes`` ``GET /health`` on fresh connections; count how many idle ones the server closed
    after its header / body deadlines."""
    host, port = url.removeprefix("http://").split(":")
    conns = []
    for i in range(n):
        r, w = await asyncio.open_connection(host, int(port))
        w.write(b"POST /v1/models/small/solve HTTP/1.1\r\nHost: x\r\nContent-Le" if i % 2 else
                b"POST /v1/models/small/solve HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        conns.append((r, w))
    lat, statuses = [], []
    for _ in range(probes):
        t0 = time.perf_counter()
        r, w = await asyncio.open_connection(host, int(port))
        w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = await asyncio.wait_for(r.read(), 30)
        lat.append(time.perf_counter() - t0)
        statuses.append(int(head.split()[1]))
        w.close()
    t0 = time.perf_counter()

    async def closed(r):  # the server ended the connection (EOF, possibly after an error answer)
        try:
            await asyncio.wait_for(r.read(), 60)
            return True
        except asyncio.TimeoutError:
            return False
        except ConnectionError:
            return True
    done = await asyncio.gather(*(closed(r) for r, _ in conns))
    wait = time.perf_counter() - t0
    for _, w in conns:
        w.close()
    lat.sort()
    return {"idle": n, "health_ok": sum(s == 200 for s in statuses), "probes": probes,
            "p50": 1e3 * lat[len(lat) // 2], "max": 1e3 * lat[-1], "closed": sum(done), "closed_within": wait}


def run_idle(args) -> str:
    import api_fixtures as af

    tmp = Path(tempfile.mkdtemp(prefix="structrom-bench-idle-"))
    (tmp / "models").mkdir()
    load = os.getloadavg()[0]
    with af.ServerProcess(tmp / "models") as srv:
        res = asyncio.run(idle_connections(srv.url, args.idle))
    return "\n".join([
        "## Service: idle connections",
        "",
        f"`.venv/bin/python bench/api.py --idle {args.idle}`: `structrom serve` with its default configuration "
        "(header deadline 10 s, body pauses 30 s, at most 256 connections waiting for their client), "
        f"{args.idle} loopback connections each sending half a request (half cut in the headers, half in the "
        f"body) and then nothing; meanwhile {res['probes']} `GET /health` on new connections (load average "
        f"{load:.1f}).",
        "",
        "| idle connections | /health answered 200 | /health p50 [ms] | /health max [ms] | idle connections closed | "
        "all closed within [s] |",
        "|---|---|---|---|---|---|",
        f"| {res['idle']} | {res['health_ok']} of {res['probes']} | {res['p50']:.1f} | {res['max']:.1f} | "
        f"{res['closed']} | {res['closed_within']:.1f} |",
        "",
        "Before the connection guard (`api/http_guard.py`), about 1,100 such connections made every request, "
        "`/health` included, answer 503, and none was closed.",
        ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=200, help="at most this many requests per row")
    ap.add_argument("--seconds", type=float, default=15.0, help="at most this long per row")
    ap.add_argument("--increments", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="solver processes of the server (one "
                    "server run per value)")
    ap.add_argument("--idle", type=int, help="instead: /health latency under this many idle half-sent connections")
    ap.add_argument("--append-docs", action="store_true", help="write the Service section of docs/benchmarks.md")
    args = ap.parse_args()
    if args.idle:
        text = run_idle(args)
        print(text)
        if args.append_docs:
            from docs_section import write_section

            write_section("Service: idle connections", text)
        return 0
    rows, env = run(args)
    text = report(rows, env, args)
    print("\n" + text)
    if args.append_docs:
        from docs_section import write_section

        write_section("Service", text)
        print("written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
