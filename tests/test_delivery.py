"""Delivery: compression, the catalog's ETag and 304, cache headers, versioned static URLs, modulepreload."""

from __future__ import annotations

import html.parser
import re

from app.api.delivery import IMMUTABLE, module_graph, static_version
from app.paths import STATIC_DIR


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.preload: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("rel") == "modulepreload":
            self.preload.append(a["href"])
        if tag in ("script", "link") and (a.get("src") or a.get("href", "").startswith("/")):
            self.refs.append(a.get("src") or a["href"])


def page(api) -> _Links:
    parser = _Links()
    parser.feed(api.get("/").text)
    return parser


def test_catalog_is_at_least_five_times_smaller_on_the_wire(api):
    plain = api.get("/api/layers", headers={"Accept-Encoding": "identity"})
    packed = api.get("/api/layers", headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    wire = int(packed.headers["content-length"])
    assert len(plain.content) >= 5 * wire, (len(plain.content), wire)
    assert packed.json() == plain.json()  # httpx decodes gzip: the same document


def test_static_modules_and_the_page_are_compressed(api):
    r = api.get("/static/js/main.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    r = api.get("/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"


def test_catalog_etag_and_304(api):
    for path in ("/api/layers", "/api/layers/Conv2d", "/api/presets"):
        first = api.get(path)
        etag = first.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag  # strong
        assert first.headers["cache-control"] == "no-cache"
        again = api.get(path)
        assert again.headers["etag"] == etag and again.content == first.content
        not_modified = api.get(path, headers={"If-None-Match": etag})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        weak = api.get(path, headers={"If-None-Match": f'"nope", W/{etag}'})
        assert weak.status_code == 304
        stale = api.get(path, headers={"If-None-Match": '"0000"'})
        assert stale.status_code == 200 and stale.content == first.content


def test_etags_differ_per_document(api):
    tags = {
        api.get(p).headers["etag"] for p in ("/api/layers", "/api/layers/Conv2d", "/api/layers/Linear", "/api/presets")
    }
    assert len(tags) == 4


def test_unknown_layer_is_still_a_404_with_suggestions(api):
    r = api.get("/api/layers/conv2d")
    assert r.status_code == 404, r.text
    assert "Conv2d" in r.json()["detail"]


def test_catalog_bytes_match_the_registry(api, registry):
    body = api.get("/api/layers").json()
    assert [layer["type"] for layer in body["layers"]] == [spec.type for spec in registry]
    assert api.get("/api/layers/Linear").json() == registry.get("Linear").to_dict()


def test_page_references_versioned_static_urls_with_immutable_caching(api, app):
    version = app.state.static_version
    assert version == static_version(STATIC_DIR)
    r = api.get("/")
    assert r.headers["cache-control"] == "no-cache"
    refs = page(api).refs
    assert refs and all(u.startswith(f"/static/v/{version}/") for u in refs), refs
    for url in refs:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == IMMUTABLE, url
    # a relative module import inside a versioned module resolves under the same prefix
    assert api.get(f"/static/v/{version}/js/state.js").status_code == 200
    # the unversioned path keeps working for links from elsewhere, and is revalidated
    plain = api.get("/static/js/main.js")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    assert api.get(plain.request.url.path, headers={"If-None-Match": plain.headers["etag"]}).status_code == 304
    # an old release's prefix is not served from this one
    assert api.get("/static/v/0000000000000000/js/main.js").status_code == 404


def test_version_changes_when_a_file_changes(tmp_path):
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("export const a = 1;\n")
    before = static_version(tmp_path)
    (tmp_path / "js" / "a.js").write_text("export const a = 2;\n")
    assert static_version(tmp_path) != before


def test_every_modulepreload_href_exists_and_covers_the_module_graph(api, app):
    preload = page(api).preload
    assert len(preload) >= 20
    for href in preload:
        r = api.get(href)
        assert r.status_code == 200 and "javascript" in r.headers["content-type"], href
    prefix = f"/static/v/{app.state.static_version}/"
    named = {h.removeprefix(prefix) for h in preload}
    assert named == set(module_graph(STATIC_DIR)) - {"js/main.js"}


def test_module_graph_follows_static_dynamic_and_re_exports(tmp_path):
    js = tmp_path / "js"
    (js / "sub").mkdir(parents=True)
    (js / "main.js").write_text('import { a } from "./a.js";\n// import "./commented.js";\nimport("./sub/lazy.js");\n')
    (js / "a.js").write_text('export * from "./sub/b.js";\nimport "./side.js";\n')
    (js / "side.js").write_text("")
    (js / "sub" / "b.js").write_text('import { a } from "../a.js";\n')  # a cycle
    (js / "sub" / "lazy.js").write_text("")
    assert module_graph(tmp_path) == ["js/main.js", "js/a.js", "js/sub/lazy.js", "js/sub/b.js", "js/side.js"]


def test_catalog_is_compressed_once_at_start_up(api, app):
    r = api.get("/api/layers", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert r.num_bytes_downloaded == len(app.state.catalog.layers.gzipped)  # not gzipped a second time
