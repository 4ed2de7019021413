"""Write one benchmark's section of docs/benchmarks.md in place (the other sections are kept)."""
from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(title: str, text: str, doc: Path = DOC) -> None:
    """Replace the section ``## {title}`` (up to the next ``## `` heading) by ``text`` (which starts with
    that heading), or append it when the document has no such section."""
    old = doc.read_text() if doc.exists() else "# Benchmarks\n"
    start = old.find(f"\n## {title}\n")
    if start < 0:
        doc.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
        return
    end = old.find("\n## ", start + 1)
    tail = old[end:] if end >= 0 else ""
    doc.write_text(old[:start].rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n" + tail)
