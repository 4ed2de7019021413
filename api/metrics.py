"""Prometheus text-format metrics without a dependency: counters, gauges and histograms (thread-safe)."""
from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(labels: tuple) -> str:
    if not labels:
        return ""
    esc = [(k, str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in labels]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self._hist: dict[str, dict[tuple, list]] = defaultdict(dict)
        self._gauges: dict[str, callable] = {}

    def counter(self, name: str, help: str) -> None:
        self._help[name] = ("counter", help)

    def histogram(self, name: str, help: str) -> None:
        self._help[name] = ("histogram", help)

    def gauge(self, name: str, help: str, fn) -> None:
        """A gauge computed at scrape time by ``fn()`` (a number or a dict labels-tuple -> number)."""
        self._help[name] = ("gauge", help)
        self._gauges[name] = fn

    def inc(self, name: str, value: float = 1.0, **labels) -> None:
        with self._lock:
            self._counters[name][tuple(sorted(labels.items()))] += value

    def observe(self, name: str, value: float, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            h = self._hist[name].get(key)
            if h is None:
                h = self._hist[name][key] = [[0] * len(BUCKETS), 0.0, 0]
            for i, b in enumerate(BUCKETS):
                if value <= b:
                    h[0][i] += 1
            h[1] += value
            h[2] += 1

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help) in sorted(self._help.items()):
                lines += [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
                if kind == "counter":
                    for labels, v in sorted(self._counters[name].items()):
                        lines.append(f"{name}{_labels(labels)} {v:g}")
                elif kind == "histogram":
                    for labels, (counts, total, n) in sorted(self._hist[name].items()):
                        for b, c in zip(BUCKETS, counts):
                            lines.append(f"{name}_bucket{_labels(labels + (('le', f'{b:g}'),))} {c}")
                        lines.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {n}")
                        lines.append(f"{name}_sum{_labels(labels)} {total:.6g}")
                        lines.append(f"{name}_count{_labels(labels)} {n}")
                else:
                    v = self._gauges[name]()
                    items = v.items() if isinstance(v, dict) else [((), v)]
                    for labels, x in sorted(items):
                        lines.append(f"{name}{_labels(labels)} {x:g}")
        return "\n".join(lines) + "\n"
