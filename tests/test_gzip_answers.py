"""JSON answers of the torch work are gzipped by the worker that computed them, once, and only for clients
that accept gzip (app.core.compress.gzip_json, app.api.deps.in_worker)."""

from __future__ import annotations

import asyncio
import gzip
from types import SimpleNamespace

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.api.deps import in_worker
from app.api.middleware import accepts_gzip
from app.core import tasks
from app.core.body import JSONBytes
from app.core.compress import GZIP_MINIMUM, GzippedJSON, gzip_json
from app.core.config import Settings

# a 16-block Linear+ReLU net: an answer of about 1.4 MB
DEEP = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {
                "type": "Sequential",
                "layers": [{"type": "Linear", "in_features": 64, "out_features": 64}, {"type": "ReLU"}],
            }
        ]
        * 16,
    },
    "inputs": [{"shape": [8, 64]}],
    "seed": 0,
}
CONV = {
    "layer": {"type": "Conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
    "inputs": [{"shape": [1, 2, 6, 6]}],
    "seed": 1,
}


def raw(app, path: str, body, accept_encoding: str | None) -> tuple[httpx.Response, bytes]:
    """The response and its bytes as they came over the wire (not decoded by httpx)."""

    async def go():
        headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            # httpx sends "Accept-Encoding: gzip, deflate" unless told otherwise; None removes the header
            if accept_encoding is None:
                c.headers.pop("accept-encoding", None)
            async with c.stream("POST", path, json=body, headers=headers) as r:
                return r, b"".join([chunk async for chunk in r.aiter_raw()])

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/run", DEEP),
        ("/api/shape", DEEP),
        ("/api/explain", {**CONV, "index": [0, 1, 2, 2]}),
        ("/api/receptive-field", {**CONV, "index": [0, 1, 2, 2]}),
    ],
)
def test_a_large_answer_arrives_gzipped_once_and_decodes_to_the_plain_answer(app, path, body):
    packed, wire = raw(app, path, body, "gzip, deflate")
    plain, plain_wire = raw(app, path, body, "identity")
    assert packed.status_code == plain.status_code == 200
    assert len(plain_wire) >= GZIP_MINIMUM
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) == len(wire)
    # compressed once: one gzip layer gives back exactly the bytes a client without gzip gets
    assert gzip.decompress(wire) == plain_wire
    assert "content-encoding" not in plain.headers
    assert orjson.loads(plain_wire)  # plain JSON
    if path == "/api/run":
        assert len(wire) * 2 < len(plain_wire)


@pytest.mark.parametrize("accept_encoding", [None, "identity", "gzip;q=0", "br", "deflate", "*;q=0", "gzip;q=0, *"])
def test_a_client_that_does_not_accept_gzip_gets_plain_json(app, accept_encoding):
    r, wire = raw(app, "/api/run", DEEP, accept_encoding)
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert orjson.loads(wire)["outputs"]


@pytest.mark.parametrize("accept_encoding", ["gzip", "GZIP", "x-gzip", "*", "br;q=1.0, gzip;q=0.8", "deflate, *;q=0.1"])
def test_any_way_of_accepting_gzip_gets_it(app, accept_encoding):
    r, wire = raw(app, "/api/run", DEEP, accept_encoding)
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(wire))["outputs"]


def test_an_error_answer_stays_readable(app):
    r, wire = raw(app, "/api/run", {"layer": {"type": "Nope"}, "inputs": [{"shape": [1]}]}, "gzip")
    assert r.status_code == 404
    body = gzip.decompress(wire) if r.headers.get("content-encoding") == "gzip" else wire
    assert "Nope" in orjson.loads(body)["detail"]


def test_accepts_gzip_reads_q_values():
    assert accepts_gzip("gzip") and accepts_gzip("gzip, deflate, br") and accepts_gzip("*")
    assert accepts_gzip("gzip;q=0.001") and accepts_gzip("gzip ; q=1")
    assert not accepts_gzip("") and not accepts_gzip("identity") and not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=0.0, *") and not accepts_gzip("gzip;q=nonsense")
    assert not accepts_gzip("*;q=0") and not accepts_gzip("gzipx") and not accepts_gzip("br, deflate")


@given(st.binary(max_size=4096))
def test_gzip_json_gives_back_the_same_bytes(data):
    encoded = JSONBytes(data)
    out = gzip_json(encoded)
    if len(data) < GZIP_MINIMUM:
        assert out is encoded  # too small to gain: sent as it is
    else:
        assert isinstance(out, GzippedJSON) and gzip.decompress(out) == data
        assert gzip_json(encoded) == out  # no timestamp: the same answer, the same bytes


def test_over_a_real_connection_the_answer_is_gzipped_and_decodes_the_same(live_url):
    with httpx.Client(base_url=live_url, timeout=60) as client:
        packed = client.post("/api/run", json=DEEP, headers={"Accept-Encoding": "gzip"})
        plain = client.post("/api/run", json=DEEP, headers={"Accept-Encoding": "identity"})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert packed.num_bytes_downloaded * 2 < plain.num_bytes_downloaded
    assert packed.content == plain.content  # httpx decoded it: the same bytes


def test_the_prebuilt_answers_read_accept_encoding_the_same_way(api):
    refused = api.get("/api/layers", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.status_code == 200 and "content-encoding" not in refused.headers
    taken = api.get("/api/layers", headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
    assert taken.headers["content-encoding"] == "gzip" and taken.json() == refused.json()


@pytest.mark.parametrize("kind", [GzippedJSON, JSONBytes])
def test_the_workers_bytes_are_the_body_not_a_copy(kind):
    # a network's answer is 1-3 MB: the web process sends the object the pool handed it
    result = kind(b'{"x": 1}' * 100)

    class Pool:
        async def call(self, name, body, **kw):
            return result

    async def is_disconnected():
        return False

    request = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(pool=Pool())),
        headers={"accept-encoding": "gzip"},
        is_disconnected=is_disconnected,
    )
    response = asyncio.run(in_worker(request, "run", b"{}"))
    assert response.body is result
    assert response.headers["content-length"] == str(len(result))
    assert (response.headers.get("content-encoding") == "gzip") == (kind is GzippedJSON)


@given(st.binary(max_size=2048))
def test_gzip_json_of_plain_bytes_is_the_same_answer(data):
    # the worker hands gzip_json the JSON as plain bytes (app.core.body.dumps): what goes out is a JSONBytes
    # either way, compressed or not, with the bytes a JSONBytes of the same data gives
    out = gzip_json(data)
    assert isinstance(out, JSONBytes) and out == gzip_json(JSONBytes(data))
    assert type(out) is (JSONBytes if len(data) < GZIP_MINIMUM else GzippedJSON)


def test_a_worker_task_gzips_the_answer_it_would_send_plain():
    settings = Settings()
    raw = orjson.dumps(DEEP)
    plain = tasks.task("run", raw, settings, None, {}, gzip=False)
    packed = tasks.task("run", raw, settings, None, {}, gzip=True)
    assert plain[0] == packed[0] == "ok" and type(plain[1]) is JSONBytes and type(packed[1]) is GzippedJSON
    assert gzip.decompress(packed[1]) == plain[1]
