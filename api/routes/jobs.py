"""Job routes: a background job's status and, when finished, its result or error."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from ..deps import Read, Services, services
from ..responses import Job, errors

router = APIRouter(tags=["queries"])
JobId = Annotated[str, PathParam(max_length=64, description="the job id of a 202 answer")]


@router.get("/v1/jobs/{job_id}", dependencies=[Read], response_model=Job, responses=errors(404))
async def job(job_id: JobId, s: Annotated[Services, Depends(services)]):
    """A job: ``status`` pending / running / done / failed; ``result`` or ``error`` when finished. Jobs
    and their results are kept on disk (they survive a restart) for ``job_ttl_seconds`` once finished."""
    return JSONResponse(await s.jobs.get(job_id))
