"""The routers of the REST service. :data:`ROUTERS` is the one place where a router is registered:
``create_app`` includes each of them (append a new ``APIRouter`` here)."""
from __future__ import annotations

from . import jobs, models, queries, service

ROUTERS = [service.router, models.router, queries.router, jobs.router]
