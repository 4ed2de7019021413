"""Shared test set-up: make ``examples/`` (not a package) importable as top-level modules."""
import sys
from pathlib import Path

_EXAMPLES = str(Path(__file__).resolve().parents[1] / "examples")
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def dictionary_built(tmp_path_factory):
    """``(directory, dictionary file)`` of :func:`kind_fixtures.build_dictionary`, built once per session (HF
    runs: tens of seconds) for the dictionary and REST tests."""
    from kind_fixtures import build_dictionary

    d = tmp_path_factory.mktemp("dictionary")
    return d, build_dictionary(d)
