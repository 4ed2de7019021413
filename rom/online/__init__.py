"""Online stage: ``ReducedModel.load(path).solve(loading) -> Result``, with no MPI or PETSc import.

* :class:`ReducedModel` - load a reduced model file (:mod:`structrom.rom.model_file`), validate loadings against
  it (:mod:`structrom.rom.online.schema` documents the ``loading_schema`` format) and solve them with the
  reduced Newton method of :mod:`structrom.rom.online.newton`;
* :class:`DictionaryModel` - local reduced models and the classifier that picks one per loading, with the
  same ``solve(loading)`` (:mod:`structrom.rom.online.dictionary`); its :class:`DictionaryResult` names the
  local model used;
* :class:`SeparatedModel` - an EIM-separated linear model (parameter API ``solve(mu)``, residual estimate);
* :func:`load_model` - either kind from a model file; :class:`OnlineModel` - the interface both satisfy;
* :class:`Result` - reduced coordinates, Newton statistics, error indicator, dual quantities at the
  reduced points, and lazy reconstructions (displacements, Gappy fields, max von Mises);
* errors: :class:`~structrom.rom.loading.LoadingError` (bad or out-of-family loading),
  :class:`~structrom.rom.model_file.ModelFileError` (bad file), :class:`OnlineError` (bad request),
  :class:`OnlineSolverError` (divergence after all cutbacks).
"""
from structrom.rom.loading import LoadingError
from structrom.rom.model_file import ModelFileError

from .dictionary import DictionaryModel, DictionaryResult
from .model import DUAL_QUANTITIES, OnlineError, OnlineSolverError, ReducedModel
from .protocol import OnlineAnswer, OnlineModel, load_model
from .result import Result
from .separated import SeparatedModel, SeparatedResult

__all__ = ["ReducedModel", "Result", "DictionaryModel", "DictionaryResult", "OnlineError", "OnlineSolverError",
           "LoadingError", "ModelFileError", "DUAL_QUANTITIES", "OnlineModel", "OnlineAnswer", "SeparatedModel",
           "SeparatedResult", "load_model"]
