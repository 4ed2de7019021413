"""Query routes: solve one loading, a nodal-temperature upload, a batch, reconstructed fields, the query
log. Each request is admitted within ``max_inflight`` (429 + ``Retry-After`` above) and solved in a
solver process within ``request_timeout_seconds``."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from .. import execution
from ..deps import (DuplicateKeyError, Read, Services, UniqueKeysRoute, Write, job_owner, loads_unique,
                    services)
from ..errors import DomainError
from ..responses import Accepted, AnySolveResult, BatchResult, DictionarySolveResult, QueryLog, SolveResult, errors
from ..schemas import BatchBody, FieldsRequest, NodalRequest, ParameterBatchRequest, SolveBody
from .models import ModelId

router = APIRouter(tags=["queries"], route_class=UniqueKeysRoute)
Svc = Annotated[Services, Depends(services)]
Background = Annotated[bool, Query(description="run as a job: 202 + Location")]
QUERY_ERRORS = errors(404, 409, 413, 422)


def accepted(job: dict) -> JSONResponse:
    loc = f"/v1/jobs/{job['id']}"
    return JSONResponse({"job": job["id"], "status": job["status"], "location": loc}, status_code=202,
                        headers={"Location": loc})


async def one_upload(http: Request, name: str, what: str) -> None:
    """Refuse a form with more than one part named ``name`` (the framework keeps one of them without a word)."""
    if len((await http.form()).getlist(name)) > 1:
        raise DomainError(422, "invalid_upload", f"{name}: the form has more than one {name!r} part; upload {what}",
                          name)


@router.post("/v1/models/{model_id}/solve", dependencies=[Read], response_model=AnySolveResult,
             responses={202: {"model": Accepted, "description": "accepted as a job (``background=true``)"},
                        **QUERY_ERRORS})
async def solve(model_id: ModelId, body: SolveBody, s: Svc, http: Request, background: Background = False):
    """Solve one query: a ``loading`` for hyper-reduced and dictionary models (max von Mises and max
    cumulated plastic strain per increment, displacements of the requested node sets, the error indicator per
    increment and the trust flags; a dictionary names the local model that answered and what was tried), or
    ``parameters`` for separated models (reduced solution, error estimate and its relative indicator, trust
    flag, node-set displacements). The model card's ``query`` says which; the other form is a 422."""
    s.registry.path(model_id)
    if background:
        s.registry.servable(model_id)
        return accepted(await s.jobs.submit("solve", model_id, body.model_dump(mode="json", exclude_unset=True),
                                            job_owner(http)))
    return JSONResponse(await execution.solve(s, model_id, body))  # plain JSON: no second validation pass


@router.post("/v1/models/{model_id}/solve/nodal", dependencies=[Read],
             response_model=DictionarySolveResult | SolveResult,
             responses=QUERY_ERRORS)
async def solve_nodal(model_id: ModelId, s: Svc, http: Request,
                      request: Annotated[str, Form(description="JSON of the solve request (NodalRequest): "
                                                   "loading without temperature values, options")],
                      temperature: Annotated[UploadFile, File(description="(n_times, n_nodes) nodal "
                                                              "temperatures: .npy or HDF5")]):
    """Solve a loading whose nodal temperature field is uploaded (.npy or HDF5, one row per time of
    ``temperature_times``, of ``loading.temperature.times`` given as ``{"type": "nodal", "times": [...]}``, or of
    the loading). One file; a request's inline temperature is refused. HDF5 uploads are screened before any
    array is read."""
    s.registry.path(model_id)
    try:
        loads_unique(request)
    except DuplicateKeyError as exc:
        raise DomainError(422, "validation_error", f"request: {exc}", "request") from None
    except (ValueError, RecursionError):
        pass  # not JSON: named by the validation below
    try:
        body = NodalRequest.model_validate_json(request)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = "request." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "request"
        raise DomainError(422, "validation_error", f"{field}: {e['msg']}", field) from None
    await one_upload(http, "temperature", "one (n_times, n_nodes) array")
    temp = body.loading.temperature
    if temp is not None and (temp.type != "nodal" or temp.values is not None):
        raise DomainError(422, "validation_error", "request.loading.temperature: the temperature of /solve/nodal is "
                          f"the uploaded file, got a {temp.type!r} temperature"
                          + (" with values" if temp.values is not None else "") + "; leave loading.temperature out "
                          "(the times of the file's rows: temperature_times)", "request.loading.temperature")
    if temp is not None and body.temperature_times is not None and list(temp.times) != list(body.temperature_times):
        raise DomainError(422, "validation_error", "request.temperature_times: differs from "
                          "request.loading.temperature.times; give the times of the file's rows once",
                          "request.temperature_times")
    data = await temperature.read()
    given = None  # the request field that gave the rows' times (an HDF5 'times' dataset must then agree)
    if body.temperature_times is not None:
        times, given = body.temperature_times, "request.temperature_times"
    elif temp is not None:
        times, given = temp.times, "request.loading.temperature.times"
    elif body.loading.times is not None:
        times = body.loading.times
    else:
        times = [i * body.loading.end_time / body.loading.increments for i in range(body.loading.increments + 1)]
    return JSONResponse(await execution.solve_nodal(s, model_id, body, data, temperature.filename or "",
                                                    list(times), given))


@router.post("/v1/models/{model_id}/solve/deck", dependencies=[Read],
             responses={200: {"content": {"application/json": {}, "application/octet-stream": {}},
                              "description": "summary (format=json) or the .frd / zipped VTU files"},
                        **QUERY_ERRORS})
async def solve_deck(model_id: ModelId, s: Svc, http: Request,
                     deck: Annotated[UploadFile, File(description="CalculiX deck (.inp, text) of the model's mesh "
                                                      "and sets; *INCLUDE is refused (paste the included cards)")],
                     format: Annotated[str, Form(description="json (summary), frd (CalculiX results) or vtu "
                                                 "(zip of one VTU per increment and a .pvd)")] = "json",
                     extrapolate: Annotated[bool, Form(description="answer a deck outside the training "
                                                       "family anyway")] = False):
    """Answer a CalculiX deck of the model's family: its loads (*DLOAD pressures, *CLOAD forces, *TEMPERATURE,
    amplitudes, steps) mapped onto the model's loaded sets, solved by the reduced model. A deck that does not
    fit the model (another mesh, loads on other sets, unsupported keywords) is refused with 422 naming the
    line; a deck outside the training family with 422 ``outside_training_family`` unless ``extrapolate``."""
    s.registry.path(model_id)
    for name, what in (("deck", "one CalculiX deck"), ("format", "one format"), ("extrapolate", "one value")):
        await one_upload(http, name, what)
    data = await deck.read()
    out = await execution.deck(s, model_id, data, deck.filename or "deck.inp", format, extrapolate)
    if isinstance(out, dict):
        out["model"] = model_id
        return JSONResponse(out)
    content, media, name = out
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/v1/models/{model_id}/batch", dependencies=[Read], response_model=BatchResult,
             responses={202: {"model": Accepted, "description": "accepted as a job"}, **QUERY_ERRORS})
async def batch(model_id: ModelId, body: BatchBody, s: Svc, http: Request, background: Background = False):
    """Solve many loadings (same options for all); a bad loading fails alone (its item is an error).
    Batches larger than the server's ``sync_batch_max`` always run as a job (202 + Location)."""
    s.registry.path(model_id)
    n, key = len(body.queries), "parameters" if isinstance(body, ParameterBatchRequest) else "loadings"
    if n > s.config.max_batch:
        raise DomainError(422, "batch_too_large", f"{n} {key}; at most {s.config.max_batch} per request", key)
    if background or n > s.config.sync_batch_max:
        s.registry.servable(model_id)
        return accepted(await s.jobs.submit("batch", model_id, body.model_dump(mode="json", exclude_unset=True),
                                            job_owner(http)))
    return JSONResponse(await execution.batch(s, model_id, body))


@router.post("/v1/models/{model_id}/fields", dependencies=[Read],
             responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"},
                        **QUERY_ERRORS})
async def fields(model_id: ModelId, body: FieldsRequest, s: Svc):
    """Solve a loading and download the reconstructed fields (displacement at the nodes; dual
    quantities averaged per element for VTU/XDMF, per integration point in HDF5)."""
    s.registry.path(model_id)
    content, media, name = await execution.fields(s, model_id, body)
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/v1/queries", tags=["service"], dependencies=[Write], response_model=QueryLog, responses=errors(403))
async def queries(s: Svc, limit: Annotated[int, Query(ge=1, le=10_000)] = 100):
    """The query log (latest first): time, model, kind, status, number of loadings, milliseconds."""
    return JSONResponse({"queries": s.registry.query_log(limit)})
