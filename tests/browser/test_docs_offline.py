"""/docs renders Swagger UI in a real browser with every request answered by this server."""

from __future__ import annotations

from urllib.parse import urlsplit


def test_swagger_ui_renders_from_this_server_alone(page, base_url):
    hosts: set[str] = set()
    page.on("request", lambda req: hosts.add(urlsplit(req.url).netloc) if req.url.startswith("http") else None)
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if urlsplit(route.request.url).netloc == urlsplit(base_url).netloc else route.abort()
        ),
    )
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Layer Explorer" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("#operations-run-run_api_run_post, .opblock-summary-path[data-path='/api/run']")
    # "Try it out" runs a request from the page (its CSP allows this origin's API)
    page.locator(".opblock-summary-path[data-path='/api/devices']").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")
    assert hosts == {urlsplit(base_url).netloc}
