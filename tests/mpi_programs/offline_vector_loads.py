"""Run the offline stage on the current number of ranks; print the modes and the reduced tractions / forces."""
import json
import sys

import h5py
from mpi4py import MPI

from structrom.rom.offline.config import load_offline_config
from structrom.rom.offline.pipeline import run_offline

cfg = load_offline_config(sys.argv[1])
cfg.output.file = sys.argv[2]
out = run_offline(cfg, MPI.COMM_WORLD, log=lambda *a: None)
if MPI.COMM_WORLD.rank == 0:
    with h5py.File(out, "r") as f:
        print("RESULT " + json.dumps({
            "modes": f["modes/full"][()].tolist(), "loads": {
                f"{kind}/{name}": f[f"loads/{kind}/{name}"][()].tolist()
                for kind in ("traction", "force") for name in f[f"loads/{kind}"]}}))
