"""A stand-in for a native reader that hangs, for the reader process's time-out tests: a module of its own that
imports nothing heavy, so that the reader's fresh process reaches the hang at once (pickled functions are imported
by their module in that process)."""
from __future__ import annotations

import os
import time

from structrom.rom.adapters.reader_process import stage


def read_to_then_stall(path: str, offset: int) -> None:
    """Read ``path`` up to byte ``offset`` (unbuffered), then hang, as a reader looping on a corrupted record does."""
    stage("its blocks")
    fd = os.open(path, os.O_RDONLY)
    os.read(fd, offset)
    time.sleep(600)
