"""Targeted checks of the catalog entries of the later families (losses, recurrent, attention, reshaping, padding), through the service."""

from __future__ import annotations

import pytest

from app.core import service
from app.core.config import Settings
from app.core.errors import LayerExplorerError, ShapeMismatch
from app.core.registry import default_registry

REGISTRY = default_registry()
SETTINGS = Settings()


def run(layer: dict, *inputs: dict) -> dict:
    return service.run(REGISTRY, {"layer": layer, "inputs": list(inputs), "seed": 0}, SETTINGS)


def sh(*dims: int) -> dict:
    return {"shape": list(dims)}


def test_lstm_input_size_mismatch_is_explained():
    with pytest.raises(ShapeMismatch) as info:
        service.shape(
            REGISTRY,
            {"layer": {"type": "LSTM", "input_size": 10, "hidden_size": 20}, "inputs": [sh(5, 3, 7)]},
            SETTINGS,
        )
    assert "LSTM expects the last dimension of input 0 to be input_size=10, got 7" in info.value.detail
    assert info.value.field == "inputs[0].shape"
    assert info.value.status == 422


def test_lstm_state_inputs_and_outputs():
    layer = {"type": "LSTM", "input_size": 10, "hidden_size": 20, "num_layers": 2, "bidirectional": True}
    response = run(layer, sh(5, 3, 10), sh(4, 3, 20), sh(4, 3, 20))
    assert [o["name"] for o in response["outputs"]] == ["output", "h_n", "c_n"]
    assert response["predicted_shapes"] == [[5, 3, 40], [4, 3, 20], [4, 3, 20]]
    assert response["shape_check"] is True
    last = response["formula"][-1]
    assert (last["symbolic"], last["substituted"], last["value"]) == ("D·hidden_size", "2·20", 40)
    with pytest.raises(LayerExplorerError, match="h_0 and c_0 together"):
        run(layer, sh(5, 3, 10), sh(4, 3, 20))


def test_rnn_params_are_declared():
    params = {p["name"]: p for p in REGISTRY.get("RNN").to_dict()["params"]}
    assert list(params) == [
        "input_size",
        "hidden_size",
        "num_layers",
        "nonlinearity",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
    ]
    assert params["input_size"]["required"] and params["input_size"]["minimum"] == 1
    assert params["nonlinearity"]["choices"] == ["tanh", "relu"]
    assert (params["dropout"]["minimum"], params["dropout"]["maximum"]) == (0, 1)
    assert REGISTRY.get("LSTM").param("proj_size").default == 0


def test_cross_entropy_reduction_none_shape():
    response = run({"type": "CrossEntropyLoss", "reduction": "none"}, sh(4, 5, 3), sh(4, 3))
    assert response["output"]["shape"] == [4, 3]
    assert response["predicted_shape"] == [4, 3]
    # drawn class indices are valid: 0 <= target < C
    assert all(0 <= v < 5 for row in response["inputs"][1]["data"] for v in row)
    scalar = run({"type": "CrossEntropyLoss"}, sh(4, 5), sh(4))
    assert scalar["output"]["shape"] == [] and scalar["predicted_shape"] == []


def test_kl_div_batchmean_is_scalar():
    response = run({"type": "KLDivLoss", "reduction": "batchmean"}, sh(3, 5), sh(3, 5))
    assert response["output"]["shape"] == [] and response["shape_check"] is True


def test_transformer_encoder_nested_config_runs():
    layer = {
        "type": "TransformerEncoder",
        "encoder_layer": {
            "type": "TransformerEncoderLayer",
            "d_model": 16,
            "nhead": 2,
            "dim_feedforward": 32,
            "batch_first": True,
        },
        "num_layers": 2,
        "norm": {"type": "LayerNorm", "normalized_shape": [16]},
    }
    response = run(layer, sh(2, 5, 16))
    assert response["output"]["shape"] == [2, 5, 16]
    assert response["shape_check"] is True
    assert "TransformerEncoderLayer" in response["repr"] and "LayerNorm" in response["repr"]
    assert "encoder_layer=torch.nn.TransformerEncoderLayer(" in response["code"]
    params = {p.name: p for p in REGISTRY.get("TransformerEncoder").params}
    assert params["encoder_layer"].type == "layer" and params["encoder_layer"].required
    assert params["norm"].type == "layer" and params["norm"].nullable


def test_transformer_encoder_norm_must_match_d_model():
    layer = {
        "type": "TransformerEncoder",
        "encoder_layer": {"type": "TransformerEncoderLayer", "d_model": 16, "nhead": 2, "batch_first": True},
        "num_layers": 1,
        "norm": {"type": "LayerNorm", "normalized_shape": [8]},
    }
    with pytest.raises(ShapeMismatch, match="normalized_shape=\\[16\\]"):
        run(layer, sh(2, 5, 16))


def test_multihead_attention_outputs_are_named():
    layer = {"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 2, "add_zero_attn": True}
    response = run(layer, sh(4, 2, 8), sh(5, 2, 8), sh(5, 2, 8))
    assert [o["name"] for o in response["outputs"]] == ["attn_output", "attn_output_weights"]
    assert [o["shape"] for o in response["outputs"]] == [[4, 2, 8], [2, 4, 6]]
    assert response["shape_check"] is True
    names = [p["name"] for p in REGISTRY.get("MultiheadAttention").to_dict()["params"]]
    assert names[:2] == ["embed_dim", "num_heads"] and {"kdim", "vdim"} <= set(names)


def test_embedding_index_out_of_range_is_a_request_error():
    layer = {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 3}
    with pytest.raises(LayerExplorerError) as info:
        run(layer, {"data": [[1, 10]], "dtype": "int64"})
    assert 400 <= info.value.status < 500
    assert "between 0 and 9" in info.value.detail
    # drawn indices always fit
    assert run(layer, sh(2, 4))["output"]["shape"] == [2, 4, 3]


def test_upsample_float_scale_formula():
    response = run({"type": "Upsample", "scale_factor": 1.5, "mode": "bilinear"}, sh(1, 2, 3, 5))
    assert response["output"]["shape"] == [1, 2, 4, 7]
    h = response["formula"][2]
    assert (h["symbolic"], h["substituted"], h["value"]) == ("⌊H_in·scale_factor⌋", "⌊3·1.5⌋", 4)


def test_max_unpool_example_inverts_max_pool():
    spec = REGISTRY.get("MaxUnpool2d")
    response = service.run(REGISTRY, spec.example, SETTINGS)
    assert response["output"]["shape"] == [1, 1, 4, 4]
    assert response["inputs"][1]["dtype"] == "int64"
