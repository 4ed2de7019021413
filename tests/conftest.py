"""Shared test set-up: make ``examples/`` (not a package) importable as top-level modules."""
import sys
from pathlib import Path

_EXAMPLES = str(Path(__file__).resolve().parents[1] / "examples")
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)
