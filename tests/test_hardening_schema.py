"""Schemathesis against the app's own OpenAPI document, through the ASGI app: a bounded number of
generated requests per operation, request bodies reachable (no dangling $ref), zero 5xx and zero
responses that contradict the document (status, content type, headers, body schema, 405 + Allow).

One check is left out: ``positive_data_acceptance`` expects every schema-valid body to be accepted,
but whether ``{"layer": {...}}`` can run depends on the catalog (a layer type and its constructor
arguments), which a JSON schema for the request envelope cannot express; such bodies get a 4xx
naming the field, and the other checks hold that to the document.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from app.core.config import Settings
from app.main import create_app

APP = create_app(Settings(memory_limit_bytes=256 * 1024**2, workers=2, timeout_s=120))
# The document as the app serves it; requests then go through the ASGI app (whose lifespan leaves a
# pool started by the fixture below running).
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def workers():
    APP.state.pool.start(wait=120)
    yield
    APP.state.pool.close()


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_keeps_its_own_contract(case):
    case.call_and_validate(headers={"host": "localhost"}, excluded_checks=[checks.positive_data_acceptance])
