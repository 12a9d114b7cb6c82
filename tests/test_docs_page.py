"""/docs: Swagger UI served from this server's own pinned copy, so it works offline; no CDN anywhere."""

from __future__ import annotations

import base64
import hashlib
import html.parser
import re
from urllib.parse import urlsplit

from app.api.docs import SWAGGER_UI_VERSION
from app.paths import STATIC_DIR


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [a[k] for k in ("src", "href") if a.get(k)]
        self._in_script = tag == "script" and not a.get("src")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline.append(data)


def test_docs_reference_only_local_pinned_assets_and_they_are_served(api):
    r = api.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    parser = _Refs()
    parser.feed(r.text)
    assets = [ref for ref in parser.refs if not ref.startswith("data:")]
    assert len(assets) == 2, parser.refs
    for ref in assets:
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc and ref.startswith("/static/"), ref
        assert f"swagger-ui-{SWAGGER_UI_VERSION}" in ref  # the version is in the file name
        served = api.get(ref)
        assert served.status_code == 200, ref
        name = ref.rsplit("/", 1)[1]
        assert served.content == (STATIC_DIR / "vendor" / name).read_bytes()
        want = "javascript" if name.endswith(".js") else "text/css"
        assert want in served.headers["content-type"]
    # the page asks nothing of another host, in its text either (the init script fetches /openapi.json)
    assert not re.search(r"https?://", r.text)
    assert (STATIC_DIR / "vendor" / f"swagger-ui-{SWAGGER_UI_VERSION}.LICENSE").is_file()


def test_docs_csp_allows_the_page_and_nothing_else(api):
    r = api.get("/docs")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    parser = _Refs()
    parser.feed(r.text)
    (script,) = parser.inline
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'"  # no 'unsafe-inline', no CDN
    assert "http" not in r.headers["content-security-policy"]
    assert csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'"


def test_the_openapi_document_and_no_cdn_page_remain(api):
    assert api.get("/openapi.json").status_code == 200
    assert api.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN: not served
