"""explore() outside a notebook and `layer-explorer open`: a local server on a free port, the network in the
link, the browser opening stubbed; weights=True within and above the request limit."""

from __future__ import annotations

import base64
import html
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
import torch
from torch import nn

from app import cli
from layer_explorer import to_config
from layer_explorer.cli_open import OpenError, load_module, parse_shape
from layer_explorer.client import Client
from layer_explorer.widget import ExplorerWidget

# the module, not the function the package exports under the same name
explore_mod = importlib.import_module("layer_explorer.explorer")

MODEL_FILE = """
import torch
from torch import nn


class Net(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 7))


net = Net()


def build():
    return Net()


class NeedsArgs(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)


def not_a_module():
    return 42


def broken():
    raise RuntimeError("no weights file here")
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(textwrap.dedent(MODEL_FILE))
    return path


@pytest.fixture
def opened(monkeypatch):
    """The URLs explore() opens (webbrowser stubbed); the local server is stopped afterwards."""
    urls: list[str] = []
    monkeypatch.delenv(explore_mod.NO_BROWSER_ENV, raising=False)
    monkeypatch.setattr(explore_mod.webbrowser, "open", lambda url: urls.append(url) or True)
    monkeypatch.setattr(explore_mod.Explorer, "wait", lambda self: None)  # a script would serve until Ctrl+C
    yield urls
    explore_mod._LocalServer.stop()


def _config_of(url: str) -> dict:
    query = parse_qs(urlsplit(url).query)
    assert json.loads(query["ui"][0]) == {"view": "network"}
    return json.loads(query["config"][0])


def test_layer_explorer_open_serves_the_files_network(model_file, opened, monkeypatch):
    # `layer-explorer open FILE.py:Name --input …` in this process, as the console script runs it
    cli.main(["open", f"{model_file}:Net", "--input", "2,3,8,8"])
    assert len(opened) == 1
    url = opened[0]
    assert url.startswith("http://127.0.0.1:")
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    config = _config_of(url)
    assert "parameters" not in config
    with Client(base) as api:
        assert "Layer Explorer" in httpx.get(url).text  # the page itself, at the link opened
        shape = api.shape(config)
    model = load_module(f"{model_file}:Net")
    assert shape["output_shape"] == list(model(torch.randn(2, 3, 8, 8)).shape)
    assert shape["totals"]["param_count"] == sum(p.numel() for p in model.parameters())
    types = {t["type"] for t in shape["trace"]}
    assert {"Conv2d", "ReLU", "Flatten", "Linear"} <= types


def test_open_finds_instances_and_factories(model_file):
    assert isinstance(load_module(f"{model_file}:net"), nn.Sequential)
    assert isinstance(load_module(f"{model_file}:build"), nn.Sequential)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("{f}:Missing", "has no 'Missing'; modules there: NeedsArgs, Net, net"),
        ("{f}:NeedsArgs", "NeedsArgs() needs arguments"),
        ("{f}:not_a_module", "returned a int, not an nn.Module"),
        ("{f}:broken", "broken() raised RuntimeError: no weights file here"),
        ("{f}", "write the file and the name in it as FILE.py:Name"),
        ("{d}/nothing.py:Net", "no such file"),
    ],
)
def test_open_says_what_is_wrong(model_file, capsys, target, words):
    target = target.format(f=model_file, d=model_file.parent)
    with pytest.raises(SystemExit) as info:
        cli.main(["open", target, "--input", "1,3,8,8", "--no-browser"])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_open_checks_the_input(model_file, capsys):
    with pytest.raises(OpenError, match="whole numbers"):
        parse_shape("1,three")
    with pytest.raises(SystemExit):
        cli.main(["open", f"{model_file}:Net", "--input", "1,3,2,2", "--no-browser"])
    err = capsys.readouterr().err
    assert "Net cannot run on input (1, 3, 2, 2)" in err


def test_explore_on_a_running_server(live_url, opened):
    net = nn.Sequential(nn.Linear(6, 3), nn.ReLU())
    result = explore_mod.explore(net, torch.randn(4, 6), server=live_url)
    assert result.url == opened[0] and result.url.startswith(f"{live_url}/?")
    assert result.server is None  # nothing started here
    config = _config_of(result.url)
    with Client(live_url) as api:
        assert api.shape(config)["output_shape"] == [4, 3]


def test_explore_in_a_notebook_without_anywidget_says_how_to_get_it(monkeypatch):
    _in_notebook(monkeypatch)
    monkeypatch.setitem(sys.modules, "anywidget", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "layer_explorer.widget", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'layer-explorer\[notebook\]'"):
        explore_mod.explore(nn.Linear(3, 2), torch.randn(1, 3))


def test_explore_in_the_browser_says_the_link_carries_no_weights(live_url, opened, capsys):
    result = explore_mod.explore(nn.Linear(3, 2), torch.randn(1, 3), server=live_url, weights=True)
    assert "parameters" not in _config_of(result.url)
    assert "seeded random initialisation" in result.note
    assert result.note in capsys.readouterr().err
    # a notebook given server=... shows the link as the cell's value
    assert f'href="{html.escape(result.url)}"' in result._repr_html_()


# --- weights=True in the widget: the trained values, or above the limit the note and a seeded init ---


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(5.0)
    return net, torch.randn(1, 2, 6, 6)


def _ask(widget, url, body):
    sent = []
    widget.send = lambda msg, buffers=None: sent.append((msg, buffers))
    widget._on_request(widget, {"kind": "request", "id": 1, "method": "POST", "url": url, "body": json.dumps(body)}, [])
    ((msg, buffers),) = sent
    assert msg["id"] == 1
    return msg, bytes(buffers[0])


def _in_notebook(monkeypatch):
    shown = []
    monkeypatch.setattr(explore_mod, "in_notebook", lambda: "jupyter")
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    return shown


def test_weights_make_the_drilled_layer_compute_as_the_trained_one(trained, monkeypatch):
    net, x = trained
    shown = _in_notebook(monkeypatch)
    assert explore_mod.explore(net, x, weights=True) is None  # displayed, not returned (no second copy)
    (widget,) = shown
    assert isinstance(widget, ExplorerWidget)
    assert "module's own parameters" in widget.note
    assert "parameters" not in widget.config
    # the front end asks for a layer as it ran: the kernel adds the trained parameters
    msg, data = _ask(widget, "/api/run", {**widget.config, "path": "2"})
    assert msg["status"] == 200
    run = json.loads(data)
    inputs = torch.tensor(run["inputs"][0]["data"])
    expected = net[2](inputs)
    np.testing.assert_allclose(np.asarray(run["output"]["data"]), expected.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_weights_above_the_limit_fall_back_with_a_note(trained, monkeypatch):
    net, x = trained
    shown = _in_notebook(monkeypatch)
    body = to_config(net, x, weights=True)
    size = len(json.dumps(body, separators=(",", ":")).encode())
    monkeypatch.setenv("LAYER_EXPLORER_MAX_BODY", str(size - 1))
    explore_mod.explore(net, x, weights=True)
    (widget,) = shown
    assert f"{size / 1024**2:.1f} MB" in widget.note and "LAYER_EXPLORER_MAX_BODY" in widget.note
    assert "seeded random initialisation" in widget.note
    assert widget._parameters is None
    _, data = _ask(widget, "/api/run", {**widget.config, "path": "2"})
    run = json.loads(data)
    weight = next(p for p in run["params"] if p["name"] == "weight")
    # the seeded initialisation, not the trained (5x) values
    assert abs(weight["summary"]["max"]) < net[2].weight.abs().max().item() / 2


def test_weights_note_within_the_limit():
    body = {"layer": {"type": "Linear"}, "parameters": {"weight": [[1.0]]}}
    params, note = explore_mod.weights_note(body, 10_000)
    assert params == {"weight": [[1.0]]} and "own parameters (1 tensor)" in note
    assert explore_mod.weights_note({"layer": {}}, 10) == (None, "")


def _npy(t: torch.Tensor) -> dict:
    buf = io.BytesIO()
    np.save(buf, t.detach().numpy(), allow_pickle=False)
    return {"npy": base64.b64encode(buf.getvalue()).decode()}


def test_inputs_by_value_stay_in_the_kernel_and_the_layer_computes_as_the_trained_one(trained):
    net, x = trained
    body = {
        "layer": {
            "type": "Sequential",
            "layers": [
                {"type": "Conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
                {"type": "ReLU"},
                {"type": "Conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 1},
            ],
        },
        "inputs": [{"data": x.tolist(), "dtype": "float32"}],
        "parameters": {name: _npy(t) for name, t in net.state_dict().items()},
    }
    config, inputs = explore_mod.by_shape(body)
    assert config["inputs"] == [{"dtype": "float32", "shape": [1, 2, 6, 6]}] and "parameters" not in config
    assert inputs == body["inputs"]
    widget = ExplorerWidget(config, parameters=body["parameters"], inputs=inputs)
    assert widget.config == config  # what the front end holds: shapes, no values
    # the layer the front end opens runs on the example's own values with the trained parameters
    _, data = _ask(widget, "/api/run", {**config, "path": "2"})
    run = json.loads(data)
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(run["inputs"][0]["data"]), net[:2](x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(run["output"]["data"]), net(x).numpy(), rtol=1e-5, atol=1e-6)
    # a request for another network is answered as sent
    other = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [2]}]}
    _, data = _ask(widget, "/api/run", other)
    assert json.loads(data)["output"]["shape"] == [2]


# --- weights=True from a script: the local server adds the trained values to the page's requests ---


def test_the_local_server_computes_with_the_trained_weights(trained, opened, capsys):
    net, x = trained
    result = explore_mod.explore(net, x, weights=True)
    assert "this local server adds them" not in result.note  # that advice is for server=...
    assert "module's own parameters (4 tensors)" in result.note and result.note in capsys.readouterr().err
    config = _config_of(result.url)
    assert "parameters" not in config and config["inputs"] == [{"dtype": "float32", "shape": [1, 2, 6, 6]}]
    base = result.url.split("/?")[0]
    with torch.no_grad():
        inside, out = net[:2](x), net(x)
    # the page's own requests, as it sends them: the drilled layer, then an element explained
    run = httpx.post(f"{base}/api/run", json={**config, "path": "2"}, timeout=60).json()
    np.testing.assert_allclose(np.asarray(run["inputs"][0]["data"]), inside.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(run["output"]["data"]), out.numpy(), rtol=1e-5, atol=1e-6)
    explained = httpx.post(f"{base}/api/explain", json={**config, "path": "2", "index": [0, 1, 2, 3]}, timeout=60)
    assert explained.status_code == 200, explained.text
    assert explained.json()["value"] == pytest.approx(out[0, 1, 2, 3].item(), rel=1e-5, abs=1e-6)
    # another network is answered as sent; what the client sends is still held to the app's limit
    other = httpx.post(f"{base}/api/run", json={"layer": {"type": "ReLU"}, "inputs": [{"shape": [2]}]}, timeout=60)
    assert other.json()["output"]["shape"] == [2]
    limit = explore_mod.Settings.from_env().max_body_bytes
    big = httpx.post(f"{base}/api/run", content=b" " * (limit + 1), headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    # the same network explored again without weights: the seeded initialisation again
    plain = _config_of(explore_mod.explore(net, x).url)
    assert plain["layer"] == config["layer"]
    seeded = httpx.post(f"{base}/api/run", json={**plain, "path": "2"}, timeout=60).json()
    assert not np.allclose(np.asarray(seeded["output"]["data"]), out.numpy(), atol=1e-3)


def test_layer_explorer_open_with_weights_computes_with_the_files_parameters(tmp_path, opened):
    path = tmp_path / "fixed.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn


            def build():
                net = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
                with torch.no_grad():
                    net[0].weight.fill_(0.75)
                    net[0].bias.copy_(torch.tensor([-0.5, 0.25]))
                return net
            """
        )
    )
    cli.main(["open", f"{path}:build", "--input", "4,3", "--weights"])
    (url,) = opened
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    run = httpx.post(f"{base}/api/run", json={**_config_of(url), "path": "0"}, timeout=60).json()
    weight = next(p for p in run["params"] if p["name"] == "weight")
    assert weight["summary"]["min"] == weight["summary"]["max"] == 0.75
    x = torch.tensor(run["inputs"][0]["data"])
    expected = x.sum(dim=1, keepdim=True) * 0.75 + torch.tensor([-0.5, 0.25])
    np.testing.assert_allclose(np.asarray(run["output"]["data"]), expected.numpy(), rtol=1e-5, atol=1e-6)


SCRIPT = """
import json, os, sys
import httpx, torch
from torch import nn
from layer_explorer import explore

# no `if __name__ == "__main__":` guard: the local server's workers import this file as they start
net = nn.Sequential(nn.Linear(3, 2))
with torch.no_grad():
    net[0].weight.fill_(2.5)
    net[0].bias.fill_(-1.0)
x = torch.ones(1, 3)
result = explore(net, x, weights=True, block=False)
if result.url:  # empty in a worker
    config = json.loads(__import__("urllib.parse").parse.parse_qs(result.url.split("?", 1)[1])["config"][0])
    run = httpx.post(result.url.split("/?")[0] + "/api/run", json={**config, "path": "0"}, timeout=60)
    print(json.dumps({"status": run.status_code, "output": run.json().get("output", {}).get("data")}))
    result.stop()
"""


def test_a_script_without_a_main_guard_is_served(tmp_path):
    # a forkserver's workers import the script as __mp_main__: explore() there must not start a second server
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    env = {**os.environ, explore_mod.NO_BROWSER_ENV: "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    answer = json.loads(line)
    assert answer["status"] == 200 and answer["output"] == [[6.5, 6.5]]  # 3 × 2.5 − 1: the script's weights


def test_a_tensor_above_the_servers_element_limit_falls_back_with_a_note(opened, monkeypatch):
    # the app takes no tensor given as data above Settings.max_data_elements: every request would be refused
    net = nn.Sequential(nn.Linear(1001, 1000), nn.ReLU())
    x = torch.randn(1, 1001)
    result = explore_mod.explore(net, x, weights=True)
    assert "0.weight has 1,001,000 elements, above the 1,000,000" in result.note
    assert "seeded random initialisation" in result.note
    base = result.url.split("/?")[0]
    run = httpx.post(f"{base}/api/run", json={**_config_of(result.url), "path": "0"}, timeout=60)
    assert run.status_code == 200, run.text
    assert run.json()["output"]["shape"] == [1, 1000]
    shown = _in_notebook(monkeypatch)
    explore_mod.explore(net, x, weights=True)
    (widget,) = shown
    assert widget._parameters is None and "0.weight has 1,001,000 elements" in widget.note
