"""Errors of the online stage: a bad request to a reduced model or a result, and a failed reduced solve."""
from __future__ import annotations

from structrom.mpi.errors import StructromError


class OnlineError(StructromError, ValueError):
    """A bad request to a reduced model or a result (unknown quantity, node set, increment...)."""


class OnlineSolverError(StructromError, RuntimeError):
    """The reduced Newton solve failed after all cutbacks; the message names increment and cause."""



class ModelDataError(OnlineError):
    """The model's own data give a non-finite quantity for a query (the model file's values overflow): an error of
    the model, not of the request."""
