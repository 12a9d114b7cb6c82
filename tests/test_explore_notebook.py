"""explore() in a real Jupyter kernel (nbclient executes a notebook): the widget's output and state.

The kernel is the ipykernel of this interpreter; the notebook's cell output must be the anywidget's
view (the widget mime bundle), and the saved widget state must hold what the front end draws from:
the page's modules, the network's config and the kernel's /api/shape answer.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

CELLS = [
    "import torch\nfrom torch import nn\nfrom layer_explorer.explore import explore",
    "model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))\n"
    "x = torch.randn(2, 3, 8, 8)\n"
    "explore(model, x, weights=True);",
]


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    client = NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True)
    client.execute()
    return nb


def test_explore_outputs_the_widget_view(executed):
    outputs = executed.cells[1].outputs
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    views = [o for o in outputs if o.output_type == "display_data" and WIDGET_VIEW in o.data]
    assert len(views) == 1
    view = views[0].data[WIDGET_VIEW]
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
