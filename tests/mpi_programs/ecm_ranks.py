"""Distributed ECM on a partitioned box mesh; prints the selected global points and weights.

Elements are split by recursive bisection of their centroids; every rank builds the integrand rows
``eps(psi_i) : sigma_s`` at ITS integration points only (modes: smooth fields orthonormalized; stresses:
linear elasticity and J2 plasticity applied to the strains of smooth displacement fields). Global point
numbers: element ``e``, point ``q`` -> ``e n_q + q`` (one element type). The quadrature error of the
reduced rule is measured independently (each rank's share of ``G (w - w_FE)``, Allreduced). Also runs
the ECM on rows compressed by :func:`compress_rows`, the one-point greedy rule (``selection="greedy"``) and the ECM
on the factored integrand (:class:`structrom.rom.integrand.FactoredIntegrand`: the modes' strains and the stresses,
no matrix), also on rotated stress snapshots (:func:`structrom.rom.stress_compression.compress_stress`) and with a
shortlist of candidates scored between full products.
Usage: ecm_ranks.py [element]   (C3D8 default, or C3D10)
"""
import json
import sys
import time

import numpy as np
from mpi4py import MPI

from structrom.mpi.partition import recursive_bisection
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.structured import box
from structrom.rom.materials import J2Plasticity, LinearElastic, LinearHardening
from structrom.rom.reduced_quadrature import compress_rows, empirical_cubature, integrand_rows

comm = MPI.COMM_WORLD
element = sys.argv[1] if len(sys.argv) > 1 else "C3D8"
divisions = (8, 5, 4) if element == "C3D8" else (5, 3, 3)
mesh = box((2.0, 1.0, 0.8), divisions, element)
conn = mesh.blocks[0].connectivity
x = mesh.points
part = recursive_bisection(x[conn].mean(axis=1), comm.size)
mine = np.flatnonzero(part == comm.rank)
disc = Discretization(mesh, mine)
n_q = disc.groups[0].n_element_points
gpts = disc.point_elements * n_q + np.tile(np.arange(n_q), len(disc.elements))


def fields(params):
    """Smooth displacement fields at all nodes ``(3 n_nodes, len(params))`` (same on every rank)."""
    cols = []
    for k, a in enumerate(params):
        u = np.stack([np.sin(a * x[:, 0]) * (1 + 0.1 * k * x[:, 1]),
                      0.3 * np.cos(a * x[:, 1] + 0.2 * k) * x[:, 0] ** 2,
                      0.1 * (1 + x[:, 2]) ** (1 + 0.1 * k) * np.sin(x[:, 0] + 0.05 * k)], axis=1)
        cols.append(u.ravel())
    return np.array(cols).T


psi, _ = np.linalg.qr(fields(0.4 + 0.3 * np.arange(5)))
loads = 1e-3 * fields(0.55 + 0.2 * np.arange(8))
elastic = LinearElastic(200e3, 0.3)
plastic = J2Plasticity(elastic, LinearHardening(250.0, 1000.0))
n = disc.n_points
stress = []
for s in range(loads.shape[1]):
    law, amp = (elastic, 1.0) if s % 2 == 0 else (plastic, 5.0)
    eps = amp * disc.strain(loads[:, s])
    stress.append(law.integrate(np.zeros_like(eps), eps, np.zeros(n), np.zeros(n), 0.0,
                                law.initial_state(n)).stress)
eps_modes = np.stack([disc.strain(psi[:, i]) for i in range(psi.shape[1])], axis=2)
G = integrand_rows(eps_modes, np.stack(stress, axis=2))
w_fe = disc.point_weights


def measured_error(q, G=G):
    """||G w - G w_FE|| / ||G w_FE|| from every rank's share (independent of the ECM's bookkeeping)."""
    d = G @ (q.local_weights(gpts) - w_fe)
    b = G @ w_fe
    out = np.empty((2, len(b)))
    comm.Allreduce(np.ascontiguousarray(np.stack([d, b])), out)
    return float(np.linalg.norm(out[0]) / np.linalg.norm(out[1]))


comm.Barrier()
t0 = time.perf_counter()
q = empirical_cubature(comm, G, w_fe, gpts, tolerance=1e-6, selection="block")  # blocks of points per product
t_ecm = time.perf_counter() - t0
qg = empirical_cubature(comm, G, w_fe, gpts, tolerance=1e-6)  # the default greedy rule: one point per product
rc = compress_rows(comm, [G[:, : n // 2], G[:, n // 2:]], 1e-6)  # two chunks of columns, truncating
qc = empirical_cubature(comm, rc.compressed_local, w_fe, gpts, tolerance=0.9e-5)
from structrom.rom.row_sketch import sketch_rows  # noqa: E402

rs = sketch_rows(comm, lambda: [G[:, : n // 2], G[:, n // 2:]], 1e-6, gpts, block=8)  # randomized, no R x R
qs = empirical_cubature(comm, rs.compressed_local, w_fe, gpts, tolerance=0.9e-5)
from structrom.rom.integrand import FactoredIntegrand  # noqa: E402

factored = FactoredIntegrand(eps_modes, np.stack(stress, axis=2))
qf = empirical_cubature(comm, factored, w_fe, gpts, tolerance=1e-6, selection="block")  # float32 screening
qf64 = empirical_cubature(comm, factored, w_fe, gpts, tolerance=1e-6, selection="block", screening="float64")
q64 = empirical_cubature(comm, G, w_fe, gpts, tolerance=1e-6, selection="block", screening="float64")
# scoring a shortlist of 200 candidates in 3 blocks out of 4
qsl = empirical_cubature(comm, factored, w_fe, gpts, tolerance=1e-6, selection="block", shortlist=200,
                         full_scores_every=4)
# the Lawson-Hanson removal (only the points that reach zero first leave), the offline stage's default rule otherwise
qlh = empirical_cubature(comm, factored, w_fe, gpts, tolerance=1e-6, selection="block", shortlist=200,
                         full_scores_every=4, removal="lawson_hanson")
# the block's next point by residual decrease (the default: by correlation)
qco = empirical_cubature(comm, factored, w_fe, gpts, tolerance=1e-6, selection="block", shortlist=200,
                         full_scores_every=4, block_choice="decrease")
# the factored integrand on rotated stress snapshots (16 mixtures of the 8 stresses: rank 8), checked on all rows
from structrom.rom.offline.cubature import reduced_rule  # noqa: E402
from structrom.rom.stress_compression import compress_stress  # noqa: E402

mix = np.random.default_rng(5).standard_normal((len(stress), 16))
stress_mixed = np.stack(stress, axis=2) @ mix
G_mixed = integrand_rows(eps_modes, stress_mixed)
qr_ = reduced_rule(comm, compress_stress(comm, eps_modes, stress_mixed, 1e-7), w_fe, gpts, tolerance=1e-6,
                   selection="block")
# no hyper-reduction: every point with its FE weight (on the compressed integrand too, through reduced_rule)
qa = reduced_rule(comm, compress_stress(comm, eps_modes, stress_mixed, 1e-7), w_fe, gpts, tolerance=1e-6,
                  selection="all")


def condition(points):
    """Condition number of the normalized columns of G at global ``points`` (each rank adds its own)."""
    cols = np.zeros((G.shape[0], len(points)))
    here = np.isin(points, gpts)
    cols[:, here] = G[:, np.searchsorted(gpts, points[here])]
    cols = comm.allreduce(cols)
    return float(np.linalg.cond(cols / np.linalg.norm(cols, axis=0)))


volume = comm.allreduce(float(w_fe.sum()))
cond_f = condition(qf.points)
err, err_c, err_s, err_g = measured_error(q), measured_error(qc), measured_error(qs), measured_error(qg)
err_f, err_r, err_sl = measured_error(qf), measured_error(qr_, G_mixed), measured_error(qsl)
err_lh, err_co = measured_error(qlh), measured_error(qco)
all_points = comm.allreduce(n)
err_a = measured_error(qa, G_mixed)
fe_rule = sorted(zip(comm.allreduce(gpts.tolist()), comm.allreduce(w_fe.tolist())))
if comm.rank == 0:
    print("RESULT " + json.dumps({
        "n_ranks": comm.size, "n_points_total": all_points, "n_rows": G.shape[0],
        "points": q.points.tolist(), "weights": q.weights.tolist(), "residual": q.residual,
        "measured_error": err, "volume_error": q.volume_error, "volume": volume,
        "history": q.history, "extra": q.extra, "time": t_ecm,
        "compressed": {"rank": rc.rank, "energy_error": rc.energy_error, "points": qc.points.tolist(),
                       "weights": qc.weights.tolist(), "residual": qc.residual, "measured_error": err_c},
        "greedy": {"points": qg.points.tolist(), "weights": qg.weights.tolist(), "residual": qg.residual,
                   "measured_error": err_g, "scorings": qg.extra["n_scorings"]},
        "rotated": {"points": qr_.points.tolist(), "weights": qr_.weights.tolist(), "residual": qr_.residual,
                    "rank": qr_.extra["stress_rank"], "continued": qr_.extra["continued"],
                    "measured_error": err_r},
        "factored": {"points": qf.points.tolist(), "weights": qf.weights.tolist(), "measured_error": err_f,
                     "condition": cond_f,
                     "float64": {"points": qf64.points.tolist(), "weights": qf64.weights.tolist()},
                     "assembled_float64": {"points": q64.points.tolist(), "weights": q64.weights.tolist()}},
        "shortlist": {"points": qsl.points.tolist(), "weights": qsl.weights.tolist(), "measured_error": err_sl,
                      "scorings": qsl.extra["n_scorings"], "short_scorings": qsl.extra["n_short_scorings"],
                      "scorings_without": qf.extra["n_scorings"]},
        "lawson_hanson": {"points": qlh.points.tolist(), "weights": qlh.weights.tolist(), "measured_error": err_lh,
                          "selections": qlh.extra["n_selections"], "dropped": qlh.extra["n_dropped"],
                          "selections_nonpositive": qsl.extra["n_selections"],
                          "dropped_nonpositive": qsl.extra["n_dropped"], "removal": qlh.extra["removal"]},
        "decrease": {"points": qco.points.tolist(), "weights": qco.weights.tolist(), "measured_error": err_co,
                        "block_choice": qco.extra["block_choice"], "default_choice": qsl.extra["block_choice"]},
        "all": {"same_as_fe": [list(t) for t in zip(qa.points.tolist(), qa.weights.tolist())] == [list(t) for t in fe_rule],
                "residual": qa.residual, "measured_error": err_a, "converged": qa.converged,
                "selection": qa.extra["selection"], "volume_error": qa.volume_error},
        "sketched": {"rank": rs.rank, "range_rank": rs.range_rank, "points": qs.points.tolist(),
                     "weights": qs.weights.tolist(), "measured_error": err_s},
    }))
