"""Answers of the REST service (pydantic): the OpenAPI schema documents every answer, errors included.

Hot paths return plain JSON built by :mod:`structrom.api.service` (no second validation pass); these
models describe it, and the schemathesis tests check that every answer conforms.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(Open):
    status: int
    code: str = Field(description="machine-readable reason, e.g. invalid_loading, unknown_model, busy")
    field: str | None = Field(None, description="the request field involved (dotted path), if any")
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    status: str
    models: int


class ModelSummary(Open):
    id: str
    kind: str = Field("hyper_reduced", description="hyper_reduced, separated or dictionary")
    sha256: str
    bytes: int
    published: float
    modes: int
    reduced_points: int
    surfaces: list[str]
    indicator_tolerance: float


class ModelList(BaseModel):
    models: list[ModelSummary]
    rejected: list[str] = Field(description="model files present but refused by screening or validation")


class Indicator(Open):
    quantity: str
    tolerance: float
    reference: float | None = None
    guarantee: str | None = Field(None, description="what a trusted answer promises")


class CardBase(Open):
    id: str
    sizes: dict[str, Any]
    surfaces: list[str]
    node_sets: list[str]
    loading_schema: dict[str, Any]
    training: Any = None
    indicator: Indicator
    provenance: Any = None
    versions: list[Any] = []
    query: str = Field("loading", description="what POST /solve takes: 'loading' or 'parameters'")
    features: list[str] = Field([], description="the endpoints this kind answers (others: 422 unsupported_for_kind)")
    sha256: str
    bytes: int
    published: float


class PrescribedSet(BaseModel):
    node_set: str
    components: list[str]
    range: tuple[float, float] | None = Field(None, description="training range of the imposed value "
                                              "(length units of the card)")


class HyperReducedCard(CardBase):
    kind: Literal["hyper_reduced"]
    centrifugal: bool
    gravity: bool
    dirichlet: list[Any]
    prescribed_displacements: dict[str, PrescribedSet] = Field(
        {}, description="prescribed sets (keys of `loading.displacement`) with their node set, components and "
        "training range; the answer's `reactions` are on these")
    materials: list[Any]
    units: Any


class ParameterRange(BaseModel):
    name: str
    range: tuple[float, float]


class SeparatedCard(CardBase):
    kind: Literal["separated"]
    parameters: list[ParameterRange]
    entries: str
    units: Any = None


class LocalModelCard(Open):
    name: str
    modes: int
    reduced_points: int
    training_loadings: int
    indicator: Indicator


class DictionaryCard(CardBase):
    kind: Literal["dictionary"]
    prescribed_displacements: dict[str, PrescribedSet] = {}
    local_models: list[LocalModelCard]
    classifier: dict[str, Any]
    efficiency: Any = None
    units: Any = None


ModelCard = Annotated[Union[HyperReducedCard, SeparatedCard, DictionaryCard], Field(discriminator="kind")]


class NodeSetDisplacement(BaseModel):
    nodes: int
    mean: list[list[float | None]]
    max_magnitude: list[float | None]


class CycleMaximum(BaseModel):
    max: list[float | None] = Field(description="per cycle, the largest value over the reduced points")
    point: list[int] = Field(description="per cycle, the integration point (mesh numbering) where it occurs")


class CycleSummary(BaseModel):
    """Cycle quantities of the history (requested with ``cycles``), per cycle, over the reduced points:
    ``strain_range`` (von Mises equivalent of the largest strain difference within the cycle) [-],
    ``stress_amplitude`` and ``mean_stress`` (half range and mean over the cycle of the stress component with
    the largest range) [stress], ``ratcheting`` (equivalent strain of the change of the cycle-mean strain
    from the previous cycle) [-]."""

    bounds: list[tuple[float, float]]
    over: str
    strain_range: CycleMaximum
    stress_amplitude: CycleMaximum
    mean_stress: CycleMaximum
    ratcheting: CycleMaximum


class SolveResult(Open):
    kind: str | None = Field(None, description="hyper_reduced (or dictionary: see DictionarySolveResult)")
    model: str | None = None
    model_sha256: str | None = Field(None, description="sha256 of the model file that answered (the model card's "
                                     "`sha256` of that version): which version answered when a model is replaced")
    times: list[float]
    indicator: list[float | None]
    trusted: list[bool]
    trusted_all: bool
    indicator_quantity: str
    indicator_kind: str | None = Field(None, description="calibrated_error_bound: the indicator is the largest of the "
                                       "leave-one-out calibrated bounds of the relative errors (displacement, stress, "
                                       "p; the card's indicator.guarantee); gappy_residual: the Gappy residual of "
                                       "indicator_quantity, a heuristic without a bound")
    indicator_tolerance: float
    extrapolated: bool
    warnings: list[str]
    newton_iterations: list[int]
    cutbacks: list[int]
    max_von_mises: list[float | None]
    max_von_mises_over: str
    max_cumulated_plastic_strain: list[float | None] | None = None
    max_cumulated_plastic_strain_over: str | None = None
    displacement: dict[str, NodeSetDisplacement]
    reactions: dict[str, list[float | None]] | None = Field(
        None, description="models with prescribed displacements: `<set>.<axis>` -> per increment, the reaction "
        "resultant on the prescribed set along the prescribed axis [force] (what a test rig measures)")
    cycles: CycleSummary | None = Field(None, description="with `cycles` in the query")
    timings_ms: dict[str, float]


class Attempt(Open):
    model: str
    probability: float
    indicator: float | None = None
    trusted: bool | None = None
    error: str | None = None


class DictionarySolveResult(SolveResult):
    """The answer of a dictionary model: the local model's answer, which local model, what was tried."""

    kind: Literal["dictionary"]
    local_model: str
    fallback: bool = Field(description="true when the classifier's first choice was flagged and another answered")
    probabilities: dict[str, float]
    attempts: list[Attempt]


class SeparatedSolveResult(Open):
    """The answer of a separated model to parameter values."""

    kind: Literal["separated"]
    model: str | None = None
    model_sha256: str | None = Field(None, description="sha256 of the model file that answered")
    parameters: dict[str, float]
    coordinates: list[float]
    error_estimate: float | None = Field(description="estimate of the energy-norm error (absolute)")
    indicator: float | None = Field(description="error_estimate / energy norm of the solution")
    trusted: bool
    indicator_tolerance: float
    max_displacement: float
    displacement: dict[str, NodeSetDisplacement]
    warnings: list[str]
    timings_ms: dict[str, float]


AnySolveResult = Union[DictionarySolveResult, SolveResult, SeparatedSolveResult]


class BatchResult(BaseModel):
    model: str
    results: list[AnySolveResult | ErrorBody]
    ok: int
    failed: int


class Accepted(BaseModel):
    job: str
    status: str
    location: str


class Job(BaseModel):
    id: str
    kind: str
    model: str
    status: str = Field(description="pending, running, done or failed")
    created: float
    started: float | None = None
    finished: float | None = None
    result: AnySolveResult | BatchResult | None = None
    error: ErrorDetail | None = None


class QueryRecord(BaseModel):
    ts: float
    model: str
    kind: str
    status: int
    loadings: int
    ms: float


class QueryLog(BaseModel):
    queries: list[QueryRecord]


def errors(*statuses: int) -> dict:
    """``responses=`` of a route: the JSON error body for each status (plus 429/500/503, always possible)."""
    desc = {400: "bad request", 401: "missing or invalid API key", 403: "writes disabled", 404: "not found",
            409: "the model file is invalid", 413: "body too large", 422: "invalid request",
            429: "too many requests in flight (Retry-After)", 500: "internal error (a solver process stopped)",
            503: "overloaded, stopping or past the deadline (Retry-After)", 507: "job store full"}
    return {s: {"model": ErrorBody, "description": desc.get(s, "error")}
            for s in sorted(set(statuses) | {401, 429, 500, 503})}
