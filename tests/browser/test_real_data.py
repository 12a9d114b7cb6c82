"""Real data in the layer view (issue 21): a sample image in, a Sobel kernel by hand, the edge map."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.browser.helpers import config_url, wait_js
from tests.browser.helpers import wait_render as _wait_render

pytestmark = pytest.mark.browser

SHOTS = Path("/work/shots/h21-data")
CONV = {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3}
SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def wait_render(page, after: int = 0) -> int:
    # a loaded 2-core machine: the first answer waits for the worker's warm-up
    return _wait_render(page, after, timeout=90_000)


def open_view(page, config: dict) -> None:
    page.goto(config_url(config))
    wait_render(page)


def _last_run_body(page, calls):
    wait_js(page, "() => document.querySelector('#layer-view').getAttribute('aria-busy') === 'false'")
    return calls[-1]


def _canvas_pixels(page, role: str, channel: int = 0) -> tuple[np.ndarray, float, float]:
    got = page.evaluate(
        """([role, ch]) => {
             const c = document.querySelector(`#data-maps canvas[data-role="${role}"][data-channel="${ch}"]`);
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             return {w: c.width, h: c.height, px: Array.from(d), lo: Number(c.dataset.lo), hi: Number(c.dataset.hi)};
           }""",
        [role, channel],
    )
    rgba = np.array(got["px"], dtype=np.int32).reshape(got["h"], got["w"], 4)
    return rgba, got["lo"], got["hi"]


def _runs(page) -> list[dict]:
    calls: list[dict] = []

    def on_request(req):
        if req.url.split("?")[0].endswith("/api/run") and req.method == "POST":
            calls.append(json.loads(req.post_data))

    page.on("request", on_request)
    return calls


def test_stripes_through_sobel_shows_the_edge_map(page, api_run):
    calls = _runs(page)
    open_view(page, {"layer": CONV, "inputs": [{"shape": [1, 1, 24, 24]}], "seed": 0})
    panel = page.locator("#data-panel")
    assert panel.is_visible()
    n = wait_render(page)
    page.locator("#data-sources button[data-sample='stripes-0']").click()
    n = wait_render(page, n)
    page.locator("#kernel-preset").select_option("sobel_x")
    wait_render(page, n)
    body = _last_run_body(page, calls)
    # the request carries the image and the kernel the page chose
    assert body["inputs"][0]["image"].startswith("data:image/png;base64,")
    assert body["inputs"][0]["mode"] == "L" and body["inputs"][0]["size"] == [24, 24]
    assert body["parameters"]["weight"] == [[SOBEL_X]] and body["parameters"]["bias"] == [0]
    # the API's own answer for that body, pixel by pixel against the drawn output plane
    ref = api_run(body)
    out = np.array(ref["output"]["data"], dtype=np.float64)[0, 0]
    rgba, lo, hi = _canvas_pixels(page, "output")
    assert rgba.shape[:2] == out.shape == (22, 22)
    assert lo == pytest.approx(out.min()) and hi == pytest.approx(out.max())
    want = np.round(255 * (out - out.min()) / (out.max() - out.min()))
    assert np.abs(rgba[..., 0] - want).max() <= 1
    # vertical stripes: Sobel x answers at the edges (non-zero columns) and is zero inside the stripes
    assert (out != 0).any() and (out == 0).any()
    cols = np.abs(out).sum(axis=0)
    assert (cols[cols > 0].size < out.shape[1]) and np.allclose(out, out[0])  # columns, the same on every row
    # the input plane is the image's real pixels (0 or 1)
    x = np.array(ref["inputs"][0]["data"])[0, 0]
    assert set(np.unique(x)) <= {0.0, 1.0}
    # the kernel grid shows the preset
    values = page.eval_on_selector_all("#kernel-grid input", "els => els.map(e => Number(e.value))")
    assert values == [v for row in SOBEL_X for v in row]
    SHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SHOTS / "sobel-stripes.png"))
    page.screenshot(path=str(SHOTS / "sobel-stripes-page.png"), full_page=False)


def test_editing_a_kernel_cell_reruns_with_it(page):
    calls = _runs(page)
    open_view(page, {"layer": CONV, "inputs": [{"shape": [1, 1, 12, 12]}]})
    n = wait_render(page)
    page.locator("#data-sources button[data-sample='disc']").click()
    n = wait_render(page, n)
    page.locator("#kernel-preset").select_option("identity")
    n = wait_render(page, n)
    cell = page.locator("#kernel-grid input").nth(4)
    cell.fill("")
    cell.press_sequentially("2.5")
    n = wait_render(page, n)
    wait_js(page, "() => document.querySelector('#layer-view').getAttribute('aria-busy') === 'false'")
    # the cell being typed in keeps its text and the focus while the layer reruns
    assert cell.input_value() == "2.5" and cell.evaluate("el => el === document.activeElement")
    body = _last_run_body(page, calls)
    assert body["parameters"]["weight"][0][0][1] == [0, 2.5, 0]
    assert page.locator("#kernel-preset").input_value() == "custom"
    # the choices travel in the link
    assert "stripes" not in page.url and "disc" in page.url
    # "random (seed)": the layer's own seeded initialisation again, no parameters sent
    page.locator("#kernel-preset").select_option("random")
    wait_render(page, n)
    assert "parameters" not in _last_run_body(page, calls)


def test_dropped_file_goes_in(page):
    calls = _runs(page)
    open_view(page, {"layer": CONV, "inputs": [{"shape": [1, 1, 8, 8]}]})
    n = wait_render(page)
    page.evaluate(
        """async () => {
             const c = document.createElement('canvas'); c.width = 8; c.height = 8;
             const g = c.getContext('2d'); g.fillStyle = '#000'; g.fillRect(0, 0, 8, 8);
             g.fillStyle = '#fff'; g.fillRect(0, 0, 4, 8);
             const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
             const dt = new DataTransfer();
             dt.items.add(new File([blob], 'half.png', { type: 'image/png' }));
             document.querySelector('#data-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
           }"""
    )
    wait_render(page, n)
    body = _last_run_body(page, calls)
    assert body["inputs"][0]["image"].startswith("data:image/png")
    assert "half.png" in page.locator("#data-file-note").text_content()
    rgba, lo, hi = _canvas_pixels(page, "input")
    assert (lo, hi) == (0.0, 1.0) and rgba[0, 0, 0] == 255 and rgba[0, 7, 0] == 0  # white left half


def test_max_pool_halves_the_disc(page, api_run):
    calls = _runs(page)
    open_view(page, {"layer": {"type": "MaxPool2d", "kernel_size": 2}, "inputs": [{"shape": [1, 1, 32, 32]}]})
    n = wait_render(page)
    assert page.locator("#data-kernel-row").is_hidden()  # no weight to set
    page.locator("#data-sources button[data-sample='disc']").click()
    wait_render(page, n)
    body = _last_run_body(page, calls)
    ref = api_run(body)
    x = np.array(ref["inputs"][0]["data"])[0, 0]
    out = np.array(ref["output"]["data"])[0, 0]
    assert out.shape == (16, 16) and np.array_equal(out, x.reshape(16, 2, 16, 2).max(axis=(1, 3)))
    rgba, _, _ = _canvas_pixels(page, "output")
    assert rgba.shape[:2] == (16, 16)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#data-panel").screenshot(path=str(SHOTS / "maxpool-disc.png"))


def test_uploaded_file_goes_in(page, tmp_path):
    from PIL import Image

    calls = _runs(page)
    path = tmp_path / "gradient.png"
    Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1)), mode="L").save(path)
    open_view(page, {"layer": CONV, "inputs": [{"shape": [1, 1, 16, 16]}]})
    n = wait_render(page)
    page.locator("#data-file").set_input_files(str(path))
    wait_render(page, n)
    body = _last_run_body(page, calls)
    assert body["inputs"][0]["image"].startswith("data:image/png")
    rgba, lo, hi = _canvas_pixels(page, "input")
    assert rgba.shape[:2] == (16, 16)
    assert rgba[0, 0, 0] < rgba[0, -1, 0]  # the gradient, dark to light
    assert lo == 0.0 and hi == pytest.approx(240 / 255, abs=0.01)  # the file's pixels, scaled to [0, 1]


def test_not_shown_for_a_linear_layer(page):
    open_view(page, {"layer": {"type": "Linear", "in_features": 4, "out_features": 2}, "inputs": [{"shape": [3, 4]}]})
    assert page.locator("#data-panel").is_hidden()


def test_lenet_activations_on_the_digit(page, api_run, base_url):
    import httpx

    from app.core.presets import PRESETS

    lenet = next(p for p in PRESETS if p["name"] == "LeNet-5")["request"]
    calls = _runs(page)
    page.goto(config_url(lenet))
    wait_js(page, "() => !document.querySelector('#net-act-panel').hidden", timeout=90_000)
    page.locator("#act-samples button[data-sample='digit']").click()
    leaves = 12  # conv, tanh, pool, conv, tanh, pool, flatten, linear, tanh, linear, tanh, linear
    wait_js(page, f"() => document.querySelector('#net-act-panel').dataset.layers === '{leaves}'", timeout=90_000)
    rows = page.eval_on_selector_all("#act-rows .act-row", "els => els.map(e => e.dataset.path)")
    assert rows[0] == "input" and len(rows) == leaves + 1
    # the first conv's six feature maps are the API's values for that layer on the same image
    body = next(c for c in calls if c.get("path") == "0")
    ref = api_run(body)
    assert ref["output"]["shape"] == [1, 6, 28, 28]
    got = page.evaluate(
        """() => [...document.querySelectorAll('#act-rows .act-row[data-path="0"] canvas')]
                .map(c => [Number(c.dataset.lo), Number(c.dataset.hi), c.width, c.height])"""
    )
    assert len(got) == 6
    # drawn whole: from the JSON where it lists every value, else from that layer's .npy (never a preview)
    r = httpx.post(f"{base_url}/api/run?format=npy", json=body)
    out = np.load(io.BytesIO(r.content), allow_pickle=False)[0]
    for ch, (lo, hi, w, h) in enumerate(got):
        assert lo == pytest.approx(out[ch].min()) and hi == pytest.approx(out[ch].max())
        assert (h, w) == out[ch].shape
    # the input row is the digit: dark background, a bright stroke
    x = np.array(ref["inputs"][0]["data"])[0, 0]
    assert x.min() == 0.0 and x.max() == 1.0 and 0.05 < x.mean() < 0.5
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#net-act-panel").screenshot(path=str(SHOTS / "lenet-activations-digit.png"))


def test_an_output_too_big_for_json_is_drawn_whole_from_npy(page, base_url):
    import httpx

    calls = _runs(page)
    layer = {"type": "Conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3}
    open_view(page, {"layer": layer, "inputs": [{"shape": [1, 1, 64, 64]}]})
    n = wait_render(page)
    page.locator("#data-sources button[data-sample='stripes-45']").click()
    n = wait_render(page, n)
    page.locator("#kernel-preset").select_option("sobel_y")
    wait_render(page, n)
    wait_js(page, "() => document.querySelector('#data-maps .map-group[data-role=output]')?.dataset.full === 'true'")
    body = _last_run_body(page, calls)
    r = httpx.post(f"{base_url}/api/run?format=npy", json={k: v for k, v in body.items() if k != "window_slice"})
    full = np.load(io.BytesIO(r.content), allow_pickle=False)[0]
    assert full.shape == (8, 62, 62)
    for ch in (0, 7):
        rgba, lo, hi = _canvas_pixels(page, "output", ch)
        assert rgba.shape[:2] == (62, 62)
        assert lo == pytest.approx(full[ch].min()) and hi == pytest.approx(full[ch].max())
        want = np.round(255 * (full[ch] - full[ch].min()) / (full[ch].max() - full[ch].min()))
        assert np.abs(rgba[..., 0] - want).max() <= 1
