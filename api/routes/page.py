"""The model page: ``GET /v1/models/{id}/page`` (:mod:`structrom.api.model_page`), HTML for engineers."""
from __future__ import annotations

from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from .. import execution
from ..deps import Read, Services, services
from ..model_page import PATH, page_response
from .models import ModelId

router = APIRouter(tags=["models"])
Svc = Annotated[Services, Depends(services)]
#: Rendered plots kept per (model id, sha256) in the HTTP process (rendering takes about a second).
PLOT_CACHE_SIZE = 8
_plots: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()


@router.get(PATH, dependencies=[Read], response_class=HTMLResponse)
async def model_page(model_id: ModelId, s: Svc) -> HTMLResponse:
    """An HTML page: model card, plots, and a form to query a loading (read-only; no external resource)."""
    s.registry.path(model_id)
    await execution.scan(s)
    card = s.registry.card(model_id)  # 404 / 409 / 422 as JSON errors, like the card endpoint
    key = (model_id, str(card.get("sha256", "")))
    if key not in _plots:
        _plots[key] = await execution.figures(s, model_id)
        while len(_plots) > PLOT_CACHE_SIZE:
            _plots.popitem(last=False)
    _plots.move_to_end(key)
    return page_response(card, _plots[key])
