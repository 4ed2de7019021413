"""Empirical interpolation (classical / symmetric / rectangular EIM, DEIM, Q-DEIM), nonintrusive
separation of parameter-dependent matrices, reduced solves and a stabilized residual estimator,
after Casenave, Ern and Lelievre (arXiv 1307.4330, 1508.05330, 1212.0970). Collectives come from
:mod:`structrom.mpi.collectives`; serial use (``comm=None``) imports neither mpi4py nor petsc4py."""
from .deim import DEIMResult, deim, qdeim
from .errors import EIMError, EIMWarning
from .estimator import ResidualEstimator, residual_vectors, theta
from .greedy import EIMResult, eim_greedy
from .rectangular import RectangularInterpolant
from .reduced_solve import ReducedSystem
from .separation import (AssembledEntries, EntryEvaluator, Separation, UnionPattern, pattern_samples,
                         separate_matrices, separate_vectors, to_csr)
from .symmetric import SymmetricInterpolant

__all__ = ["AssembledEntries", "DEIMResult", "EIMError", "EIMResult", "EIMWarning", "EntryEvaluator",
           "RectangularInterpolant", "ReducedSystem", "ResidualEstimator", "Separation", "SymmetricInterpolant",
           "UnionPattern", "deim", "eim_greedy", "pattern_samples", "qdeim", "residual_vectors",
           "separate_matrices", "separate_vectors", "theta", "to_csr"]
