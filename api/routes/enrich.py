"""``POST /v1/models/{id}/enrich`` [key]: HF solves of the loadings a model does not trust, then a new
model version, as a persisted job (:mod:`structrom.api.routes_enrich`). One enrichment per model at a time."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ..deps import Services, UniqueKeysRoute, Write, job_owner, services
from ..registry import RegistryError
from ..responses import Accepted
from ..routes_enrich import EnrichRequest
from .models import ModelId
from .queries import accepted

router = APIRouter(tags=["models"], route_class=UniqueKeysRoute)
Svc = Annotated[Services, Depends(services)]


@router.post("/v1/models/{model_id}/enrich", dependencies=[Write], status_code=202, response_model=Accepted,
             responses={202: {"description": "accepted as a job: poll Location"}})
async def enrich(model_id: ModelId, body: EnrichRequest, s: Svc, http: Request):
    """Solve the loadings with the model; HF solves of those above the indicator tolerance, then a new
    model version (old one kept). Always a job: 202 + Location of ``/v1/jobs/{job}``."""
    s.registry.servable(model_id)
    kind = s.registry.kind(model_id)
    if kind not in (None, "hyper_reduced"):
        raise RegistryError(422, "unsupported_for_kind", f"model {model_id!r} is a {kind} model: enrichment (HF "
                            "solves of untrusted loadings, then a new hyper-reduced version) applies to hyper-reduced "
                            "models only", "model_id")
    s.registry.writable(model_id)  # (409 while an enrichment of it runs)
    return accepted(await s.jobs.submit("enrich", model_id, body.model_dump(mode="json"), job_owner(http)))
