"""explore() in a real Jupyter kernel (nbclient executes a notebook): the widget's output and state.

The kernel is the ipykernel of this interpreter; the notebook's cell output must be the anywidget's
view (the widget mime bundle), and the saved widget state must hold what the front end draws from:
the page's modules, the network's config and the kernel's /api/shape answer.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "explore.ipynb"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

CELLS = [
    "import torch\nfrom torch import nn\nfrom layer_explorer import explore",
    "model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))\n"
    "x = torch.randn(2, 3, 8, 8)\n"
    "explore(model, x, weights=True)",
]


def _execute(nb):
    NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True).execute()
    return nb


@pytest.fixture(scope="module")
def executed():
    return _execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS]))


def _views(cell):
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    # display_data, or execute_result if the cell's value were the widget too (shown twice)
    return [o.data[WIDGET_VIEW] for o in cell.outputs if WIDGET_VIEW in o.get("data", {})]


def test_explore_outputs_the_widget_view(executed):
    views = _views(executed.cells[1])
    assert len(views) == 1
    view = views[0]
    assert view["model_id"]

    state = executed.metadata["widgets"][WIDGET_STATE]["state"][view["model_id"]]["state"]
    assert state["_model_module"] == "anywidget"
    assert "kernelTransport" in state["_esm"] and "export default" in state["_esm"]
    assert {"js/api.js", "js/draw/network.js", "js/net/model.js", "js/vendor.js"} <= set(state["_modules"])
    assert state["config"]["layer"]["type"] in ("Sequential", "Graph")
    assert "parameters" not in state["config"]  # the trained values stay in the kernel
    assert state["title"] == "Sequential"
    assert "module's own parameters" in state["note"]
    # the kernel's /api/shape answer, so the saved notebook draws the network without a kernel
    assert state["result"]["output_shape"] == [2, 5]
    assert state["result"]["totals"]["param_count"] == 4 * 3 * 9 + 4 + 144 * 5 + 5


def test_the_example_notebook_runs_with_its_outputs_cleared():
    nb = nbformat.read(EXAMPLE, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)  # shipped with outputs cleared
    _execute(nb)
    shown = [view for c in code for view in _views(c)]
    assert len(shown) == 2  # the model as built, then with its trained parameters
    states = nb.metadata["widgets"][WIDGET_STATE]["state"]
    first, trained = (states[v["model_id"]]["state"] for v in shown)
    assert first["title"] == trained["title"] == "SmallNet"
    assert first["note"] == "" and "module's own parameters" in trained["note"]
    assert trained["result"]["output_shape"] == [1, 10]
