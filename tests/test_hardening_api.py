"""Local-service protection and honest errors, through the ASGI app (Host, Content-Type, headers, CSP,
bodies that must not stall the server, the JSON catch-all, 405 Allow, the OpenAPI document)."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import APIRouter

from app.core.config import Settings
from app.main import create_app
from tests.hardening_helpers import LINEAR, client, run_async


def _request(app, method, path, **kw):
    async def go():
        async with client(app) as c:
            return await c.request(method, path, **kw)

    return run_async(go)


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.1:31337", "[::1]", "[::1]:8000"])
def test_local_hosts_are_answered(app, host):
    r = _request(app, "GET", "/healthz", headers={"host": host})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.2", "[::2]", ""]
)
def test_other_hosts_get_a_json_400(app, host):
    # DNS rebinding: a page on evil.example resolved to 127.0.0.1 still sends Host: evil.example
    r = _request(app, "POST", "/api/run", json=LINEAR, headers={"host": host})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_host" and "LAYER_EXPLORER_ALLOWED_HOSTS" in r.json()["detail"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_allowed_hosts_come_from_settings():
    app = create_app(Settings(allowed_hosts=("explorer.lan:8000",)))
    assert _request(app, "GET", "/healthz", headers={"host": "explorer.lan"}).status_code == 200
    assert _request(app, "GET", "/healthz", headers={"host": "localhost"}).status_code == 400


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_posts_must_be_declared_json(app, content_type):
    # A cross-site <form> or no-cors fetch can send exactly these without a CORS preflight.
    headers = {"content-type": content_type} if content_type else {}
    r = _request(app, "POST", "/api/run", content=json.dumps(LINEAR).encode(), headers=headers)
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type" and "application/json" in r.json()["detail"]


def test_json_with_a_charset_is_fine(app):
    r = _request(
        app,
        "POST",
        "/api/shape",
        content=json.dumps(LINEAR).encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text


def test_cross_site_text_plain_post_does_not_run(app):
    r = _request(
        app,
        "POST",
        "/api/run",
        content=json.dumps(LINEAR).encode(),
        headers={"content-type": "text/plain", "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 415
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_unless_configured(app):
    r = _request(
        app, "OPTIONS", "/api/run", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers
    configured = create_app(Settings(cors_origins=("https://notebook.example",)))
    ok = _request(
        configured,
        "OPTIONS",
        "/api/run",
        headers={
            "origin": "https://notebook.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert ok.headers["access-control-allow-origin"] == "https://notebook.example"
    other = _request(
        configured,
        "OPTIONS",
        "/api/run",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_pages_carry_a_strict_csp_and_security_headers(app):
    r = _request(app, "GET", "/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("style-src-attr")[0]  # no inline scripts or <style> anywhere
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    api = _request(app, "GET", "/api/presets")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in api.headers["content-security-policy"]


def test_methods_not_allowed_say_which_are(app):
    r = _request(app, "GET", "/api/run")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error"] == "http_error"
    r = _request(app, "DELETE", "/api/layers")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_an_integer_with_5000_digits_is_a_400(app):
    body = b'{"layer": {"type": "Linear", "in_features": ' + b"9" * 5000 + b', "out_features": 2}}'
    r = _request(app, "POST", "/api/run", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "4300 digits" in r.json()["detail"]


def test_too_deep_and_invalid_bodies_are_400s(app):
    deep = b'{"layer": ' + b"[" * 100 + b"]" * 100 + b"}"
    r = _request(app, "POST", "/api/run", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested deeper than 64" in r.json()["detail"]
    # brackets inside strings do not count
    fine = json.dumps({**LINEAR, "device": "[" * 200}).encode()
    r = _request(app, "POST", "/api/run", content=fine, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "device"
    r = _request(app, "POST", "/api/run", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]


def test_a_large_bracket_body_does_not_stall_healthz(app):
    big = b"[" + b"[]," * (8 * 1024**2 // 3 - 4) + b"[]]"  # just under the 8 MiB limit, 2.8 million arrays

    async def go():
        async with client(app) as c:
            post = asyncio.create_task(c.post("/api/run", content=big, headers={"content-type": "application/json"}))
            await asyncio.sleep(0.05)
            health = await c.get("/healthz")
            return health, post.done(), await post

    health, post_done_first, post = run_async(go)
    assert health.status_code == 200 and not post_done_first
    assert post.status_code == 422 and "JSON object" in post.json()["detail"]


def test_unexpected_errors_are_json_500_without_a_traceback():
    app = create_app(Settings())
    router = APIRouter()

    @router.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.include_router(router)
    r = _request(app, "GET", "/api/boom")
    assert r.status_code == 500
    assert r.json() == {
        "detail": "the server failed on this request (an internal error; the server log has the details)",
        "error": "internal_error",
        "field": None,
    }
    assert "secret" not in r.text and "Traceback" not in r.text


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_openapi_is_honest(app):
    doc = _request(app, "GET", "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert "HTTPValidationError" not in schemas
    for path in ("/api/run", "/api/shape", "/api/explain"):
        op = doc["paths"][path]["post"]
        body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body_ref.endswith("ExplainRequest" if path == "/api/explain" else "RunRequest")
        for status in ("400", "413", "415", "422", "500", "503", "504"):
            assert op["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
        assert "Retry-After" in op["responses"]["503"]["headers"]
    assert "application/octet-stream" in doc["paths"]["/api/run"]["post"]["responses"]["200"]["content"]
    assert set(schemas["ErrorBody"]["required"]) == {"detail", "error"}
    # what a 422 really carries matches the documented shape
    r = _request(app, "POST", "/api/run", json={"layer": {"type": "Linear"}, "inputs": "x"})
    assert r.status_code == 422 and {"detail", "error", "field"} <= set(r.json())
