"""Model routes: list, card, publish (screened and validated in a solver process, then renamed in
atomically), delete."""
from __future__ import annotations

import asyncio
import os
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from .. import execution
from ..deps import Read, Services, Write, services
from ..errors import DomainError
from ..middleware import _TooLarge
from ..registry import MODEL_ID
from ..responses import ModelCard, ModelList, errors

router = APIRouter(tags=["models"])
ModelId = Annotated[str, PathParam(pattern=MODEL_ID.pattern, max_length=64,
                                   description="model id: letters, digits, '_' and '-' (no dots, no slashes)")]
Svc = Annotated[Services, Depends(services)]


@router.get("/v1/models", dependencies=[Read], response_model=ModelList, responses=errors())
async def list_models(s: Svc):
    """Published models; ``rejected``: model files in the directory refused by screening or validation
    (files copied in by hand are screened at the first listing that sees them)."""
    await execution.scan(s)
    return JSONResponse({"models": s.registry.list(), "rejected": sorted(s.registry.rejected)})


@router.get("/v1/models/{model_id}", dependencies=[Read], response_model=ModelCard, responses=errors(404, 409, 422))
async def model_card(model_id: ModelId, s: Svc):
    """The model card: sizes, surfaces and node sets, training loadings and ranges (``loading_schema``),
    units, indicator quantity and tolerance, provenance (file names only)."""
    s.registry.path(model_id)
    await execution.scan(s)
    return JSONResponse(s.registry.card(model_id))


@router.put("/v1/models/{model_id}", dependencies=[Write], status_code=201, response_model=ModelCard,
            responses={200: {"model": ModelCard, "description": "replaced"}, **errors(403, 409, 413, 422)},
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def publish(model_id: ModelId, request: Request, s: Svc):
    """Publish (or replace) a model: the raw model file (HDF5) as the body. Streamed to a temp file of the
    models directory, screened and validated in a solver process (no external data or links, indices in
    range, finite scalars...), fsynced, then renamed over ``<id>.h5`` atomically. A solve that started on
    the previous version finishes on it."""
    reg = s.registry
    reg.path(model_id)
    reg.writable(model_id)  # (409 while an enrichment of it runs: checked again when the upload is renamed in)
    fd, tmp = reg.temp_upload()
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > s.config.max_model_bytes:
                    raise _TooLarge(s.config.max_model_bytes)
                f.write(chunk)
        if size == 0:
            raise DomainError(422, "empty_body", "the body must be the model file (HDF5)", "body")
        s.load.enter()
        try:
            try:
                described = await s.pool.run("describe", model_id, str(tmp), "body", 422)
            except DomainError as exc:
                if exc.code == "invalid_model_file":
                    raise DomainError(422, "invalid_model_file", f"model file rejected: {exc.message}",
                                      "body") from None
                if exc.code == "worker_crashed":
                    raise DomainError(422, "invalid_model_file", "model file rejected: reading it stopped the "
                                      "solver process (a corrupt HDF5 file)", "body") from None
                raise
        finally:
            s.load.leave()
        # a client gone now (api.middleware.Guard cancels its request) does not cut the commit half-way: the rename
        # and the index row are done together, then the temp file (already renamed) is cleaned up
        commit = asyncio.ensure_future(asyncio.to_thread(reg.commit, model_id, tmp, described))
        try:
            replaced, card = await asyncio.shield(commit)
        except asyncio.CancelledError:
            await asyncio.wait([commit])
            raise
    finally:
        tmp.unlink(missing_ok=True)
    return JSONResponse(card, status_code=200 if replaced else 201,
                        headers={"Location": f"/v1/models/{model_id}"})


@router.delete("/v1/models/{model_id}", dependencies=[Write], status_code=204,
               responses=errors(403, 404, 409, 422))
async def unpublish(model_id: ModelId, s: Svc):
    """Remove a model (a solve already running on it finishes on the version it opened)."""
    await asyncio.to_thread(s.registry.delete, model_id)
    return Response(status_code=204)
