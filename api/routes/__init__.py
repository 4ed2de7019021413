"""The routers of the REST service. :data:`ROUTERS` is the one place where a router is registered:
``create_app`` includes each of them (append a new ``APIRouter`` here)."""
from __future__ import annotations

from . import enrich, jobs, models, page, queries, service

ROUTERS = [service.router, models.router, page.router, queries.router, enrich.router, jobs.router]
