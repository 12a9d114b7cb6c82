"""Every catalog entry: its example runs as it is, and the predicted shape is the real one."""

from __future__ import annotations

import pytest
from torch import nn

from app.core import service
from app.core.config import Settings
from app.core.registry import default_registry

REGISTRY = default_registry()
SPECS = list(REGISTRY)
SETTINGS = Settings()
META_CHECK = Settings(meta_check=True)

# torch.nn classes deliberately not in the catalog, each with the reason.
EXCLUDED = {
    "Module": "the base class",
    "Container": "deprecated container base",
    "Sequential": "a container: see the Sequential layer config",
    "ModuleList": "a container without forward()",
    "ModuleDict": "a container without forward()",
    "ParameterList": "a container without forward()",
    "ParameterDict": "a container without forward()",
    "DataParallel": "a parallel wrapper",
    "RNNBase": "the base class of RNN/LSTM/GRU",
    "RNNCellBase": "the base class of the RNN cells",
    "SyncBatchNorm": "needs a distributed process group",
    "NLLLoss2d": "deprecated alias of NLLLoss",
}


def test_catalog_covers_torch_nn():
    names = {n for n in dir(nn) if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module)}
    buildable = {n for n in names if not n.startswith("Lazy") and n not in EXCLUDED}
    missing = sorted(buildable - {s.type for s in SPECS})
    assert not missing, f"torch.nn types missing from the catalog: {missing}"
    assert len(SPECS) >= 90


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_example_runs_and_shape_is_predicted(spec):
    response = service.run(REGISTRY, spec.example, SETTINGS)
    real = [o["shape"] for o in response["outputs"]]
    assert response["predicted_shapes"] is not None, f"{spec.type} has no shape rule"
    assert response["predicted_shapes"] == real
    assert response["shape_check"] is True
    for dims, shape in zip(response["formulas"], real):
        assert [d["value"] for d in dims] == shape


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_shape_endpoint_agrees_without_allocating(spec):
    response = service.shape(REGISTRY, spec.example, SETTINGS)
    run = service.run(REGISTRY, spec.example, SETTINGS)
    assert response["output_shapes"] == [o["shape"] for o in run["outputs"]]
    assert response["param_count"] == run["param_count"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_formula_meta_and_real_agree(spec):
    # /api/shape answers from the formula; with meta_check the meta pass runs beside it
    response = service.shape(REGISTRY, spec.example, META_CHECK)
    run = service.run(REGISTRY, spec.example, SETTINGS)
    real = [o["shape"] for o in run["outputs"]]
    assert response["source"] == "formula"
    assert response["output_shapes"] == real
    if "meta_shapes" in response:  # absent only where torch has no meta kernel for the layer
        assert response["meta_shapes"] == real and response["shape_check"] is True


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_entry_is_documented(spec):
    d = spec.to_dict()
    assert d["doc"], f"{spec.type} has no summary"
    assert d["inputs"] and all(i["convention"].startswith("(") for i in d["inputs"])
    assert d["example"]["layer"]["type"] == spec.type
    for p in d["params"]:
        assert p["type"] in {"int", "float", "bool", "str", "ints", "floats", "int_list", "float_list", "tensor", "layer", "layers"}
