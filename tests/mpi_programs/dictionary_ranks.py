"""Build a dictionary of local reduced models on this communicator; print its clustering and classifier.

Usage: dictionary_ranks.py dictionary.toml out.h5"""
import json
import sys

import h5py


def summary(path) -> dict:
    """Clustering, classifier coefficients, local model sizes and criterion of a dictionary file."""
    with h5py.File(path, "r") as f:
        prov = json.loads(f.attrs["provenance"])
        return {"labels": f["clustering/labels"][()].tolist(), "medoids": f["clustering/medoids"][()].tolist(),
                "distances": f["clustering/distances"][()].tolist(), "coef": f["classifier/coef"][()].tolist(),
                "modes": [int(f[f"local/{n}/modes/singular_values"].shape[0])
                          for n in json.loads(f.attrs["local_models"])],
                "criterion": {k: prov["efficiency"][k] for k in ("global_modes", "local_modes", "beneficial")}}


if __name__ == "__main__":
    from mpi4py import MPI

    from structrom.rom.offline.dictionary import load_dictionary_config, run_dictionary

    cfg = load_dictionary_config(sys.argv[1])
    cfg.output.file = sys.argv[2]
    path = run_dictionary(cfg, MPI.COMM_WORLD, log=lambda *a, **k: None)
    if MPI.COMM_WORLD.rank == 0:
        print("RESULT " + json.dumps(summary(path)))
