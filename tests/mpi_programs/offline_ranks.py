"""Run the offline stage on the current number of ranks; print a summary of the model for comparison."""
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
            "modes": f["modes/full"][()].tolist(), "singular_values": f["modes/singular_values"][()].tolist(),
            "points": f["reduced/point"][()].tolist(), "weights": f["reduced/weights"][()].tolist(),
            "integrator": f["reduced/integrator"][()].tolist(),
            "pressure": f["loads/pressure/zmax"][()].tolist(),
            "validation_points": f["validation/point"][()].tolist(),
            "validation_weights": f["validation/weights"][()].tolist(),
            "calibration_factors": f["indicator/calibration/factors"][()].tolist()}))
