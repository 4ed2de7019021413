"""Request bodies of the REST service (pydantic, strict): what the OpenAPI schema publishes.

Every number must be finite (``NaN`` / ``Infinity`` are rejected with 422 naming the field), unknown
keys are rejected, arrays have bounded lengths. The loading is the JSON form of
:func:`structrom.rom.loading_dict.loading_from_dict` minus what must not come from a client: a nodal temperature is
given inline (``values``) or uploaded (``.npy`` / HDF5), never as a server-side ``file`` path.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictInt, StringConstraints, Tag,
                      ValidationInfo, field_validator, model_validator)

#: Numbers are strict: a string ("0.04") or a boolean where a number belongs is refused, not converted.
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Pair = tuple[Finite, Finite]
#: An amplitude: a constant, or ``[time, value]`` pairs with increasing times.
AmplitudeSpec = Finite | Annotated[list[Pair], Field(min_length=1, max_length=100_000)]
Vec3 = tuple[Finite, Finite, Finite]
#: A vector load: a constant ``[x, y, z]``, or ``[time, x, y, z]`` rows with increasing times.
VectorSpec = Vec3 | Annotated[list[tuple[Finite, Finite, Finite, Finite]], Field(min_length=1, max_length=100_000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


TEMPERATURE_KEYS = {
    "uniform": ({"reference", "amplitude"}, set()),
    "hot_spot": ({"center", "radius", "intensity", "reference", "gradient", "amplitude"},
                 {"center", "radius", "intensity"}),
    "nodal": ({"times", "values"}, {"times"}),
}


class TemperatureSpec(Strict):
    """``uniform`` (reference, amplitude), ``hot_spot`` (center, radius, intensity; reference, gradient,
    amplitude) or ``nodal`` (times ``(n_times,)``; values ``(n_times, n_nodes)`` inline, or uploaded to the
    ``/solve/nodal`` endpoint). Units: those of the model card."""

    type: Literal["uniform", "hot_spot", "nodal"] = "uniform"
    reference: Finite | None = None
    amplitude: AmplitudeSpec | None = None
    center: Vec3 | None = None
    radius: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)] | None = None
    intensity: Finite | None = None
    gradient: Vec3 | None = None
    times: Annotated[list[Finite], Field(min_length=1, max_length=100_000)] | None = None
    values: Annotated[list[Annotated[list[Finite], Field(min_length=1)]], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _keys_of_type(self):
        allowed, required = TEMPERATURE_KEYS[self.type]
        given = {k for k in self.model_fields_set if k != "type" and getattr(self, k) is not None}
        extra = given - allowed
        if extra:
            raise ValueError(f"{sorted(extra)} not allowed for a {self.type!r} temperature (allowed: {sorted(allowed)})")
        missing = required - given
        if missing:
            raise ValueError(f"a {self.type!r} temperature needs {sorted(missing)}")
        if self.values is not None:
            if len(self.values) != len(self.times or []):
                raise ValueError(f"values needs one row per time: {len(self.times or [])} rows, got {len(self.values)}")
            if len({len(r) for r in self.values}) != 1:
                raise ValueError("values rows must all have the same length (one value per node)")
        return self


class CentrifugalSpec(Strict):
    omega: AmplitudeSpec
    axis_point: Vec3 | None = None
    axis_direction: Vec3 | None = None


class PrescribedDisplacementSpec(Strict):
    """An imposed displacement on a prescribed set, naming its components (default: those the model
    prescribes on the set, its card's ``prescribed_displacements``)."""

    components: Annotated[list[Literal["x", "y", "z"]], Field(min_length=1, max_length=3)] | None = None
    amplitude: AmplitudeSpec


class LoadingSpec(Strict):
    """A loading (``structrom.rom.loading_dict.loading_from_dict``): ``times`` (start, then each increment end,
    strictly increasing) or ``end_time`` + ``increments``; temperature; pressure per surface (peak
    amplitude checked against the model's training range); ``traction`` per surface [force/area] and
    ``force`` per node set [force at each node] (vectors, see the card's ``loading_schema``); centrifugal;
    gravity; ``displacement``: the
    imposed value on each prescribed set of the model (its card's ``prescribed_displacements``; a number
    or ``[time, value]`` pairs, length units of the model card), sets not given are held at zero."""

    times: Annotated[list[Finite], Field(min_length=2, max_length=100_000)] | None = None
    end_time: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)] | None = None
    increments: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    temperature: TemperatureSpec | None = None
    pressure: dict[Name, AmplitudeSpec] | None = Field(None, max_length=256)
    centrifugal: CentrifugalSpec | None = None
    traction: dict[Name, VectorSpec] | None = Field(None, max_length=256)
    force: dict[Name, VectorSpec] | None = Field(None, max_length=256)
    gravity: Vec3 | None = None
    displacement: dict[Name, AmplitudeSpec | PrescribedDisplacementSpec] | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _time_axis(self):
        if self.times is None and (self.end_time is None or self.increments is None):
            raise ValueError("give times, or end_time and increments")
        if self.times is not None and (self.end_time is not None or self.increments is not None):
            raise ValueError("give times, or end_time and increments, not both")
        return self

    @property
    def n_increments(self) -> int:
        return len(self.times) - 1 if self.times is not None else int(self.increments)

    def to_dict(self) -> dict:
        d = self.model_dump(mode="json", exclude_none=True)
        for name, spec in (d.get("displacement") or {}).items():  # components left out: the model's own
            if isinstance(spec, dict) and "components" not in spec:
                d["displacement"][name] = spec["amplitude"]
        return d


class SolveOptions(Strict):
    extrapolate: StrictBool = Field(False, description="solve a loading outside the training ranges anyway "
                              "(its violations are returned as warnings; check the indicator)")
    node_sets: Annotated[list[Name], Field(max_length=64)] = Field(
        default_factory=list, description="node sets of the model's mesh whose displacements to return")
    reconstruct: StrictBool = Field(True, description="max von Mises / max p over the reconstructed (Gappy) fields "
                              "when the model has their bases; false: over the reduced points only (hyper-reduced and "
                              "dictionary models; a separated model refuses an explicit value)")
    cycles: Annotated[list[Finite], Field(min_length=2, max_length=10_001)] | None = Field(
        None, description="cycle bounds b_0 < b_1 < ... < b_C (times of the loading: its start or increment "
        "ends; cycle c runs from b_c to b_c+1, e.g. [0, 2, 4] for two cycles of period 2): the answer then "
        "carries `cycles`, per cycle the largest strain range, stress amplitude, mean stress and ratcheting "
        "strain over the reduced points (hyper-reduced and dictionary models)")


class SolveRequest(SolveOptions):
    """One loading (hyper-reduced and dictionary models)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        # the README's query of the demo's plate model (`bash run.sh demo`: surface "right", node set "right")
        {"loading": {"times": [0, 0.5, 1, 1.5, 2],
                     "temperature": {"type": "hot_spot", "center": [40, 20, 2.5], "radius": 10, "intensity": 290,
                                     "reference": 20, "amplitude": [[0, 0], [1, 1], [2, 0]]},
                     "pressure": {"right": [[0, 0], [1, -185], [2, 0]]}},
         "node_sets": ["right"]},
        {"loading": {"times": [0.0, 0.5, 1.0]}, "extrapolate": True}]})
    loading: LoadingSpec


class BatchRequest(SolveOptions):
    """Many loadings with the same options."""

    loadings: Annotated[list[LoadingSpec], Field(min_length=1, max_length=10_000)]

    @property
    def queries(self) -> list:
        return self.loadings


#: Parameter values of a separated model: ``{name: value}`` or a list in the order of the card's ``parameters``.
ParameterValues = Annotated[dict[Name, Finite], Field(max_length=64)] | Annotated[list[Finite], Field(max_length=64)]


class ParameterRequest(SolveOptions):
    """One parameter value of a separated model (the card's ``query`` is ``"parameters"``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"parameters": {"intensity": 512.0, "x_center": 41.0}}, {"parameters": [512.0, 41.0], "extrapolate": True}]})
    parameters: ParameterValues = Field(description="{name: value}, or a list in the order of the card's parameters")


class ParameterBatchRequest(SolveOptions):
    """Many parameter values of a separated model, with the same options."""

    parameters: Annotated[list[ParameterValues], Field(min_length=1, max_length=10_000)]

    @property
    def queries(self) -> list:
        """The parameter values as ``{"parameters": values}`` (what a solver process takes)."""
        return [{"parameters": v} for v in self.parameters]


def _query_form(value) -> str:
    """The tag of the model that validates a body: ``parameter_query`` with a ``parameters`` key, else
    ``loading_query`` (:data:`QUERY_TAGS`: left out of the field names of validation errors)."""
    has = ("parameters" in value) if isinstance(value, dict) else isinstance(value, (ParameterRequest,
                                                                                     ParameterBatchRequest))
    return "parameter_query" if has else "loading_query"


QUERY_TAGS = ("loading_query", "parameter_query")
#: The body of ``POST /solve``: a loading, or parameter values (validation errors name the fields of the form
#: the body has: a ``parameters`` key selects the parameter form).
SolveBody = Annotated[Union[Annotated[SolveRequest, Tag("loading_query")], Annotated[ParameterRequest, Tag("parameter_query")]],
                      Discriminator(_query_form)]
BatchBody = Annotated[Union[Annotated[BatchRequest, Tag("loading_query")],
                            Annotated[ParameterBatchRequest, Tag("parameter_query")]], Discriminator(_query_form)]


class FieldsRequest(Strict):
    loading: LoadingSpec
    extrapolate: StrictBool = False
    format: Literal["vtu", "xdmf", "hdf5"] = Field(
        "vtu", description="vtu: one file; xdmf: zip of .xdmf + .h5; hdf5: every increment, raw arrays")
    increment: StrictInt = Field(-1, description="increment to write (vtu, xdmf; hdf5 writes every increment and "
                                 "refuses it); negative counts from the end")
    quantities: Annotated[list[Name], Field(max_length=16)] | None = Field(
        None, description="dual quantities to reconstruct (default: all of the model's)")

    @field_validator("increment")
    @classmethod
    def _one_increment_format(cls, v: int, info: ValidationInfo) -> int:
        # (runs only when the request gives an increment)
        if info.data.get("format") == "hdf5":
            raise ValueError("format 'hdf5' writes every increment and reads no increment: leave increment out, or "
                             "use format 'vtu' or 'xdmf' for one increment")
        return v


class NodalRequest(SolveOptions):
    """The JSON part of a ``/solve/nodal`` upload: the loading without its temperature values, which
    come from the uploaded file; ``temperature_times``: times of the file's rows (default loading times)."""

    loading: LoadingSpec
    temperature_times: Annotated[list[Finite], Field(min_length=1, max_length=100_000)] | None = None
