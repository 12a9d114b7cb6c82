"""Real data (issue 21): parameters set by hand, and images as inputs."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.core.graphs import wire
from app.core.presets import PRESETS
from app.core.running.memory import attention_numbers

SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
CONV = {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "bias": False}
BLOCKS = {
    "type": "Sequential",
    "layers": [
        {"type": "SimpleResidualBlock", "name": "block1", "in_features": 10, "out_features": 50},
        {"type": "SimpleResidualBlock", "name": "block2", "in_features": 50, "out_features": 50},
    ],
}


def npy_b64(array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=array.dtype.hasobject)
    return base64.b64encode(buf.getvalue()).decode()


def run_script(code: str) -> torch.Tensor:
    namespace: dict = {}
    exec(compile(code.replace("print(output)", ""), "<snippet>", "exec"), namespace)  # the server's own script
    return namespace["output"]


# ---- parameters set by hand ----------------------------------------------------------------------


def test_sobel_weights_set_by_hand_equal_torch_conv(api):
    x = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6) ** 1.5 / 10
    body = {"layer": CONV, "inputs": [{"data": x.tolist()}], "parameters": {"weight": [[SOBEL_X]]}}
    r = api.post("/api/run", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    want = F.conv2d(x, torch.tensor([[SOBEL_X]]))
    assert torch.equal(torch.tensor(d["output"]["data"]), want)
    weight = next(p for p in d["params"] if p["name"] == "weight")
    assert weight["data"] == [[SOBEL_X]]
    # the script sets them too and reproduces the output exactly
    assert torch.equal(run_script(d["code"]), want)


def test_parameters_leave_every_other_draw_unchanged(api):
    layer = {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3}
    plain = api.post("/api/run", json={"layer": layer, "inputs": [{"shape": [1, 1, 5, 5]}], "seed": 3}).json()
    bias = [0.5, -0.25]
    given = api.post(
        "/api/run", json={"layer": layer, "inputs": [{"shape": [1, 1, 5, 5]}], "seed": 3, "parameters": {"bias": bias}}
    ).json()
    p0 = {p["name"]: p["data"] for p in plain["params"]}
    p1 = {p["name"]: p["data"] for p in given["params"]}
    assert p1["weight"] == p0["weight"] and p1["bias"] == bias
    assert given["inputs"][0]["data"] == plain["inputs"][0]["data"]
    x, w = torch.tensor(plain["inputs"][0]["data"]), torch.tensor(p0["weight"])
    assert torch.allclose(torch.tensor(given["output"]["data"]), F.conv2d(x, w, torch.tensor(bias)), atol=1e-6)


def test_network_with_fc1_weight_set_by_npy(api):
    w = np.linspace(-1, 1, 50 * 10, dtype=np.float32).reshape(50, 10)
    body = {
        "layer": BLOCKS,
        "inputs": [{"shape": [2, 10]}],
        "seed": 5,
        "parameters": {"block1.fc1.weight": {"npy": npy_b64(w)}, "block2.fc2.bias": [0.0] * 50},
    }
    r = api.post("/api/run", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    got = {p["name"]: p for p in d["params"]}
    assert np.array_equal(np.array(got["block1.fc1.weight"]["data"], dtype=np.float32), w)
    assert got["block2.fc2.bias"]["data"] == [0.0] * 50
    # the script reproduces the network's output, weights and all
    assert torch.allclose(run_script(d["code"]), torch.tensor(d["output"]["data"]), atol=0)
    # the layer inside the network sees the weights too
    child = api.post("/api/run", json={**body, "path": "block1.fc1"}).json()
    assert np.array_equal(np.array(child["params"][0]["data"], dtype=np.float32), w)


def test_float64_request_gets_the_json_values_exactly(api):
    body = {
        "layer": {"type": "Linear", "in_features": 2, "out_features": 1, "bias": False},
        "inputs": [{"data": [[1.0, 1.0]]}],
        "dtype": "float64",
        "parameters": {"weight": [[0.1, 0.2]]},
    }
    d = api.post("/api/run", json=body).json()
    assert d["output"]["data"] == [[0.1 + 0.2]]
    assert run_script(d["code"]).tolist() == [[0.1 + 0.2]]


def test_buffers_can_be_set(api):
    layer = {"type": "BatchNorm1d", "num_features": 2}
    body = {
        "layer": layer,
        "inputs": [{"data": [[1.0, 2.0]]}],
        "train": False,
        "parameters": {"running_mean": [1.0, 0.0], "running_var": [1.0, 4.0], "num_batches_tracked": 7},
    }
    d = api.post("/api/run", json=body).json()
    assert torch.allclose(torch.tensor(d["output"]["data"]), torch.tensor([[0.0, 1.0]]), atol=1e-4)
    assert torch.allclose(run_script(d["code"]), torch.tensor([[0.0, 1.0]]), atol=1e-4)


@pytest.mark.parametrize("endpoint", ["/api/explain", "/api/shape", "/api/animate"])
def test_other_endpoints_take_parameters(api, endpoint):
    x = [[[[float(i * 5 + j) for j in range(5)] for i in range(5)]]]
    body = {"layer": CONV, "inputs": [{"data": x}], "parameters": {"weight": [[SOBEL_X]]}}
    if endpoint == "/api/explain":
        body["index"] = [0, 0, 1, 1]
    r = api.post(endpoint, json=body)
    assert r.status_code == 200, r.text
    if endpoint == "/api/explain":
        # x[i][j] = 5i + j: Sobel x sums (1 + 2 + 1) * (j+1 - (j-1)) = 8
        assert r.json()["value"] == pytest.approx(8.0)
    bad = api.post(endpoint, json={**body, "parameters": {"wieght": [[SOBEL_X]]}})
    assert bad.status_code == 422 and bad.json()["field"] == "parameters.wieght"


def _refusal(api, parameters, layer=CONV):
    r = api.post("/api/run", json={"layer": layer, "inputs": [{"shape": [1, 1, 5, 5]}], "parameters": parameters})
    assert 400 <= r.status_code < 500, r.text
    return r.json()


def test_unknown_name_is_refused_with_the_valid_names(api):
    d = _refusal(api, {"wieght": [[SOBEL_X]]}, {**CONV, "bias": True})
    assert d["field"] == "parameters.wieght"
    assert "did you mean weight" in d["detail"] and d["valid"] == ["weight", "bias"]


def test_wrong_shape_is_refused(api):
    d = _refusal(api, {"weight": SOBEL_X})
    assert d["field"] == "parameters.weight" and "(1, 1, 3, 3)" in d["detail"] and "(3, 3)" in d["detail"]
    d = _refusal(api, {"weight": {"npy": npy_b64(np.zeros((3, 3), np.float32))}})
    assert d["field"] == "parameters.weight" and "(1, 1, 3, 3)" in d["detail"]


@pytest.mark.parametrize(
    "value",
    [
        [[[["a", 0, 0], [0, 0, 0], [0, 0, 0]]]],
        [[[[True, 0, 0], [0, 0, 0], [0, 0, 0]]]],
        {"npy": npy_b64(np.zeros((1, 1, 3, 3), np.int32))},
        {"npy": npy_b64(np.zeros((1, 1, 3, 3), np.complex64))},
        {"npy": npy_b64(np.zeros((1, 1, 3, 3), "U3"))},
    ],
    ids=["string", "bool", "int-npy", "complex-npy", "str-npy"],
)
def test_wrong_dtype_is_refused(api, value):
    d = _refusal(api, {"weight": value})
    assert d["field"] == "parameters.weight"


def test_integer_buffer_refuses_fractions(api):
    d = _refusal(api, {"num_batches_tracked": 1.5}, {"type": "BatchNorm2d", "num_features": 1})
    assert d["field"] == "parameters.num_batches_tracked"


@pytest.mark.parametrize("npy", ["not base64!!", "aGVsbG8=", 12], ids=["bad-base64", "not-npy", "not-a-string"])
def test_bad_npy_is_refused(api, npy):
    d = _refusal(api, {"weight": {"npy": npy}})
    assert d["field"] == "parameters.weight"


def test_pickled_npy_is_refused(api):
    array = np.empty((1, 1, 3, 3), dtype=object)
    array[...] = 0.0
    d = _refusal(api, {"weight": {"npy": npy_b64(array)}})
    assert d["field"] == "parameters.weight" and "objects" in d["detail"]


def test_parameters_must_be_an_object(api):
    d = _refusal(api, [1, 2])
    assert d["field"] == "parameters"
    d = _refusal(api, {"weight": {"npy": "", "extra": 1}})
    assert d["field"] == "parameters.weight"


def test_given_parameters_count_in_the_memory_estimate(api):
    body = {"layer": CONV, "inputs": [{"shape": [1, 1, 5, 5]}]}
    plain = api.post("/api/shape", json=body).json()
    given = api.post("/api/shape", json={**body, "parameters": {"weight": [[SOBEL_X]]}}).json()
    assert given["estimate_bytes"] - plain["estimate_bytes"] == 9 * 8  # nine float64 values held


# ---- images as inputs ----------------------------------------------------------------------------


def image_b64(im, fmt: str = "PNG", **kw) -> str:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return base64.b64encode(buf.getvalue()).decode()


def stripes(h: int = 12, w: int = 16):
    from PIL import Image

    pixels = np.zeros((h, w), np.uint8)
    pixels[:, ::4] = 255
    pixels[:, 1::4] = 128
    return Image.fromarray(pixels, mode="L")


def test_sobel_on_a_png_equals_torch_conv_of_its_pixels(api):
    im = stripes()
    body = {"layer": CONV, "inputs": [{"image": image_b64(im), "mode": "L"}], "parameters": {"weight": [[SOBEL_X]]}}
    r = api.post("/api/run", json=body)
    assert r.status_code == 200, r.text
    d = r.json()
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).reshape(1, 1, 12, 16)
    assert d["inputs"][0]["shape"] == [1, 1, 12, 16]
    assert torch.equal(torch.tensor(d["inputs"][0]["data"]), x)
    want = F.conv2d(x, torch.tensor([[SOBEL_X]]))
    assert torch.allclose(torch.tensor(d["output"]["data"]), want, atol=1e-6)
    # the script decodes the same bytes with Pillow and gets the same output, bit for bit
    assert "Image.open" in d["code"]
    assert torch.equal(run_script(d["code"]), torch.tensor(d["output"]["data"]))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_rgb_resized_imagenet_and_data_url(api, fmt):
    from PIL import Image

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), mode="RGB")
    url = f"data:image/{fmt.lower()};base64," + image_b64(im, fmt)
    inp = {"image": url, "mode": "RGB", "size": [10, 15], "scale": "imagenet"}
    layer = {"type": "Identity"}
    d = api.post("/api/run", json={"layer": layer, "inputs": [inp]}).json()
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    decoded = decoded.resize((15, 10), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(decoded, dtype=np.float32).copy()).permute(2, 0, 1)[None]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    want = (pixels / 255 - mean) / std
    assert d["output"]["shape"] == [1, 3, 10, 15]
    assert torch.allclose(torch.tensor(d["output"]["data"]), want, atol=1e-6)
    assert torch.equal(run_script(d["code"]), torch.tensor(d["output"]["data"]))


def test_raw_scale_and_float64(api):
    im = stripes(4, 4)
    inp = {"image": image_b64(im), "mode": "L", "scale": "raw"}
    d = api.post("/api/run", json={"layer": {"type": "Identity"}, "inputs": [inp], "dtype": "float64"}).json()
    assert d["output"]["dtype"] == "float64"
    assert d["output"]["data"][0][0][0] == [255.0, 128.0, 0.0, 0.0]
    assert run_script(d["code"]).dtype == torch.float64


def test_a_max_pool_halves_an_image(api):
    from PIL import Image, ImageDraw

    im = Image.new("L", (32, 32))
    ImageDraw.Draw(im).ellipse((6, 6, 25, 25), fill=255)
    body = {"layer": {"type": "MaxPool2d", "kernel_size": 2}, "inputs": [{"image": image_b64(im), "mode": "L"}]}
    d = api.post("/api/run", json=body).json()
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255)[None, None]
    assert torch.equal(torch.tensor(d["output"]["data"]), F.max_pool2d(x, 2))


def _image_refusal(api, inp, layer=None, status=None):
    r = api.post("/api/run", json={"layer": layer or {"type": "Identity"}, "inputs": [inp]})
    assert 400 <= r.status_code < 500, r.text[:300]
    if status:
        assert r.status_code == status
    return r.json()


def test_image_refusals(api):
    from PIL import Image

    good = image_b64(stripes())
    d = _image_refusal(api, {"image": "%%%not base64"})
    assert d["field"] == "inputs[0].image" and "base64" in d["detail"]
    d = _image_refusal(api, {"image": base64.b64encode(b"hello, not an image").decode()})
    assert d["field"] == "inputs[0].image" and "PNG or JPEG" in d["detail"]
    # other formats: GIF, BMP
    for fmt in ("GIF", "BMP"):
        d = _image_refusal(api, {"image": image_b64(stripes(), fmt)})
        assert "PNG or JPEG" in d["detail"], fmt
    # corrupt: a PNG and a JPEG of noise cut in half, and a PNG whose pixel data is garbled
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40), dtype=np.uint8), mode="L")
    for fmt in ("PNG", "JPEG"):
        whole = base64.b64decode(image_b64(noise, fmt))
        d = _image_refusal(api, {"image": base64.b64encode(whole[: len(whole) // 2]).decode()})
        assert d["field"] == "inputs[0].image" and "could not be" in d["detail"], fmt
    whole = bytearray(base64.b64decode(image_b64(noise)))
    whole[60:200] = bytes(140)
    d = _image_refusal(api, {"image": base64.b64encode(bytes(whole)).decode()})
    assert d["field"] == "inputs[0].image"
    # huge dimensions (a few kB of PNG that would decode to 17 million pixels): refused from the header
    bomb = image_b64(Image.new("L", (4097, 4097)), optimize=True)
    assert len(bomb) < 100_000
    d = _image_refusal(api, {"image": bomb}, status=413)
    assert "4097×4097" in d["detail"]
    # too many values after resizing, and a size past the per-side limit
    d = _image_refusal(api, {"image": good, "mode": "RGB", "size": [1000, 1000]}, status=413)
    assert d["field"] == "inputs[0].image"
    d = _image_refusal(api, {"image": good, "size": [5000, 10]}, status=422)
    assert d["field"].startswith("inputs[0].size")
    d = _image_refusal(api, {"image": good, "mode": "CMYK"}, status=422)
    assert d["field"] == "inputs[0].mode"
    d = _image_refusal(api, {"image": good, "mode": "L", "scale": "imagenet"})
    assert "RGB" in d["detail"]
    d = _image_refusal(api, {"shape": [1, 1, 4, 4], "mode": "L"})
    assert "go with 'image'" in d["detail"]
    d = _image_refusal(api, {"image": good, "shape": [1, 1, 4, 4]})
    assert "give one of" in d["detail"]
    # an input of indices does not take an image
    d = _image_refusal(api, {"image": good}, {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 3})
    assert "an image gives floats" in d["detail"]


def test_image_decoding_is_held_to_the_memory_limit_and_counted():
    from app.core.errors import TooLarge
    from app.core.running import images

    text = image_b64(stripes(64, 64))
    with pytest.raises(TooLarge) as caught:
        images.decode(text, mode="L", size=None, scale="unit", field="f", memory_limit=10_000, max_elements=10**6)
    assert caught.value.status == 413 and "decoding the image" in caught.value.detail
    _, src = images.decode(text, mode="L", size=None, scale="unit", field="f", memory_limit=10**9, max_elements=10**6)
    assert src.decode_bytes >= 64 * 64 * 4


def test_image_decoding_counts_in_the_estimate(api):
    im = stripes(64, 64)
    data = (np.asarray(im, dtype=np.float32) / 255).reshape(1, 1, 64, 64).tolist()
    layer = {"type": "Identity"}
    as_data = api.post("/api/shape", json={"layer": layer, "inputs": [{"data": data}]}).json()
    as_image = api.post("/api/shape", json={"layer": layer, "inputs": [{"image": image_b64(im), "mode": "L"}]}).json()
    assert as_image["estimate_bytes"] - as_data["estimate_bytes"] >= 64 * 64 * 4


def test_a_large_weight_is_loaded_from_npy_in_the_script(api, tmp_path, monkeypatch):
    w = np.random.default_rng(0).standard_normal((300, 256)).astype(np.float32)  # 76,800 values
    body = {
        "layer": {"type": "Linear", "in_features": 256, "out_features": 300},
        "inputs": [{"shape": [2, 256]}],
        "parameters": {"weight": {"npy": npy_b64(w)}},
    }
    d = api.post("/api/run", json=body).json()
    assert "numpy.load('weight.npy')" in d["code"] and len(d["code"]) < 10_000
    np.save(tmp_path / "weight.npy", w)
    monkeypatch.chdir(tmp_path)
    got = run_script(d["code"])
    assert torch.allclose(got, torch.tensor(d["output"]["data"]), atol=1e-5)


def test_receptive_field_uses_the_parameters_and_the_image(api):
    # a kernel with a single non-zero tap: the effective field of an output element is that one pixel
    kernel = [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    body = {
        "layer": CONV,
        "inputs": [{"image": image_b64(stripes(8, 8)), "mode": "L"}],
        "parameters": {"weight": [[kernel]]},
        "index": [0, 0, 2, 2],
    }
    r = api.post("/api/receptive-field", json=body)
    assert r.status_code == 200, r.text[:300]
    heat = wire.heat(r.json()["input"])  # the PNG heat map's levels: 0 only where |∂y/∂x| is 0
    assert np.count_nonzero(heat) == 1
    bad = api.post("/api/receptive-field", json={**body, "parameters": {"wieght": [[kernel]]}})
    assert bad.status_code == 422 and bad.json()["field"] == "parameters.wieght"


def test_animation_runs_on_the_image(api):
    body = {
        "layer": CONV,
        "inputs": [{"image": image_b64(stripes(8, 8)), "mode": "L"}],
        "parameters": {"weight": [[SOBEL_X]]},
    }
    r = api.post("/api/animate?format=gif", json=body)
    assert r.status_code == 200 and r.content[:6] in (b"GIF89a", b"GIF87a")


# ---- text as input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokenize, text, tokens",
    [
        ("char", "hello", list("hello")),
        ("whitespace", "the cat sat on the mat", ["the", "cat", "sat", "on", "the", "mat"]),
    ],
)
def test_text_becomes_token_ids_over_its_vocabulary(api, tokenize, text, tokens):
    layer = {"type": "Embedding", "num_embeddings": 16, "embedding_dim": 3}
    d = api.post("/api/run", json={"layer": layer, "inputs": [{"text": text, "tokenize": tokenize}], "seed": 1}).json()
    vocab = sorted(set(tokens))
    assert d["texts"] == [{"input": 0, "tokens": tokens, "vocabulary": vocab}]
    ids = [vocab.index(t) for t in tokens]
    assert d["inputs"][0]["data"] == [ids] and d["inputs"][0]["dtype"] == "int64"
    torch.manual_seed(1)
    emb = torch.nn.Embedding(16, 3)
    assert torch.allclose(torch.tensor(d["output"]["data"]), emb(torch.tensor([ids])).detach())
    assert torch.equal(run_script(d["code"]), torch.tensor(d["output"]["data"]))


def test_text_refusals(api):
    emb = {"type": "Embedding", "num_embeddings": 3, "embedding_dim": 2}
    r = api.post("/api/run", json={"layer": CONV, "inputs": [{"text": "abc"}]})
    assert r.status_code == 422 and r.json()["field"] == "inputs[0].text"
    r = api.post("/api/run", json={"layer": emb, "inputs": [{"text": "   ", "tokenize": "whitespace"}]})
    assert r.status_code == 422 and "no tokens" in r.json()["detail"]
    r = api.post("/api/run", json={"layer": emb, "inputs": [{"text": "abcdef"}]})  # 6 tokens, 3 embeddings
    assert 400 <= r.status_code < 500
    r = api.post("/api/run", json={"layer": emb, "inputs": [{"shape": [2], "tokenize": "char"}]})
    assert r.status_code == 422 and "go" in r.json()["detail"]


# ---- attention weights ---------------------------------------------------------------------------

ENCODER = {"type": "TransformerEncoderLayer", "d_model": 8, "nhead": 2, "dim_feedforward": 16, "batch_first": True}


@pytest.mark.parametrize("train, dropout, norm_first", [(True, 0.0, False), (True, 0.1, True), (False, 0.1, False)])
def test_encoder_layer_attention_weights_equal_torch(api, train, dropout, norm_first):
    """The self_attn weights of a TransformerEncoderLayer equal nn.MultiheadAttention(need_weights=True)."""
    layer = {**ENCODER, "dropout": dropout, "norm_first": norm_first}
    body = {"layer": layer, "inputs": [{"shape": [1, 5, 8]}], "seed": 3, "train": train}
    d = api.post("/api/run", json=body).json()
    torch.manual_seed(3)
    ref = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=dropout, batch_first=True, norm_first=norm_first)
    x = torch.randn(1, 5, 8)
    ref.train(train)
    with torch.no_grad():
        out = ref(x)  # the run's own output is untouched by the capture (same generator draws)
        h = ref.norm1(x) if norm_first else x
        ref.eval()
        _, w = ref.self_attn(h, h, h, need_weights=True, average_attn_weights=False)
        _, mean = ref.self_attn(h, h, h, need_weights=True)
    assert torch.allclose(torch.tensor(d["output"]["data"]), out, atol=1e-6)
    [a] = d["attention"]
    assert a["path"] == "self_attn" and a["heads"] == 2 and a["shape"] == [1, 2, 5, 5]
    assert torch.allclose(torch.tensor(a["weights"]), w, atol=1e-6)
    assert torch.allclose(torch.tensor(a["mean"]), mean, atol=1e-6)
    assert torch.allclose(torch.tensor(a["weights"]).sum(-1), torch.ones(1, 2, 5), atol=1e-5)


def test_multihead_attention_weights_are_its_own_second_output(api):
    layer = {"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 4}
    body = {"layer": layer, "inputs": [{"shape": [4, 1, 8]}, {"shape": [6, 1, 8]}, {"shape": [6, 1, 8]}], "seed": 0}
    d = api.post("/api/run", json=body).json()
    [a] = d["attention"]
    assert a["path"] == "" and a["heads"] == 4 and a["shape"] == [1, 4, 4, 6]
    second = torch.tensor(d["outputs"][1]["data"])
    assert torch.allclose(torch.tensor(a["mean"]), second, atol=1e-6)
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 4)
    q, k, v = torch.randn(4, 1, 8), torch.randn(6, 1, 8), torch.randn(6, 1, 8)
    _, w = F.multi_head_attention_forward(
        q,
        k,
        v,
        8,
        4,
        mha.in_proj_weight,
        mha.in_proj_bias,
        None,
        None,
        False,
        0.0,
        mha.out_proj.weight,
        mha.out_proj.bias,
        need_weights=True,
        average_attn_weights=False,
    )
    assert torch.allclose(torch.tensor(a["weights"]), w.detach(), atol=1e-6)


def test_text_through_the_attention_preset(api):
    """The text preset: the tokens' attention, row per query token, equal to plain torch's."""
    preset = next(p for p in api.get("/api/presets").json()["presets"] if p["id"] == "text-self-attention")
    d = api.post("/api/run", json=preset["request"]).json()
    [text] = d["texts"]
    assert text["tokens"] == ["the", "cat", "sat", "on", "the", "mat"]
    [a] = d["attention"]
    assert a["path"] == "encoder.self_attn" and a["shape"] == [1, 2, 6, 6]
    torch.manual_seed(0)
    emb = torch.nn.Embedding(64, 16)
    enc = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    ids = torch.tensor([[text["vocabulary"].index(t) for t in text["tokens"]]])
    with torch.no_grad():
        h = emb(ids)
        _, w = enc.eval().self_attn(h, h, h, need_weights=True, average_attn_weights=False)
    assert torch.allclose(torch.tensor(a["weights"]), w, atol=1e-6)


def test_text_vocabulary_larger_than_the_embedding_is_refused_in_words(api):
    layer = {"type": "Embedding", "num_embeddings": 4, "embedding_dim": 2}
    r = api.post("/api/run", json={"layer": layer, "inputs": [{"text": "abcdef"}]})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "inputs[0].text"
    assert "6 distinct tokens" in body["detail"] and "num_embeddings=4" in body["detail"]
    # in a network: the Embedding its input meets first
    net = {
        "type": "Sequential",
        "layers": [{**layer, "embedding_dim": 4}, {"type": "Linear", "in_features": 4, "out_features": 2}],
    }
    r = api.post("/api/run", json={"layer": net, "inputs": [{"text": "a b c d e", "tokenize": "whitespace"}]})
    assert r.status_code == 422 and r.json()["field"] == "inputs[0].text" and "5 distinct tokens" in r.json()["detail"]


def test_attention_too_large_to_draw_is_described_not_sent(api):
    layer = {"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 2, "batch_first": True}
    x = {"shape": [1, 200, 8]}  # 2 heads × 200 × 200 = 80,000 values
    d = api.post("/api/run", json={"layer": layer, "inputs": [x, x, x]}).json()
    [a] = d["attention"]
    assert a["shape"] == [1, 2, 200, 200] and "weights" not in a and "80,000 values" in a["omitted"]


def test_encoder_layer_in_eval_mode_past_the_limit_is_described(api):
    """The fast-path record (eval mode) obeys the same limit: its shape, no weights."""
    body = {"layer": ENCODER, "inputs": [{"shape": [1, 200, 8]}], "train": False}
    [a] = api.post("/api/run", json=body).json()["attention"]
    assert a["path"] == "self_attn" and a["shape"] == [1, 2, 200, 200] and "weights" not in a


def test_the_memory_estimate_counts_the_attention_weights_sent(api):
    """The response's attention numbers are in the estimate, as many as the run sends."""
    enc = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    assert attention_numbers(enc, [[3, 5, 8]], nested=True) == 3 * 2 * 5 * 5 + 3 * 5 * 5
    mha = torch.nn.MultiheadAttention(8, 4)  # (L, N, E): L=4 queries, S=6 keys, N=1
    assert attention_numbers(mha, [[4, 1, 8], [6, 1, 8], [6, 1, 8]], nested=False) == 4 * 4 * 6 + 4 * 6
    assert attention_numbers(enc, [[1, 200, 8]], nested=True) == 0  # past the limit: not sent
    assert attention_numbers(torch.nn.Linear(8, 8), [[3, 8]], nested=False) == 0
    body = {"layer": ENCODER, "inputs": [{"shape": [3, 5, 8]}], "seed": 0}
    d = api.post("/api/run", json=body).json()
    [a] = d["attention"]
    sent = np.array(a["weights"]).size + np.array(a["mean"]).size
    assert sent == attention_numbers(enc, [[3, 5, 8]], nested=True)


def test_npy_with_path_is_that_layers_output_in_full(api):
    """?format=npy with ``path``: one layer's whole output inside the network (the activations panel
    draws big feature maps from it), equal to /api/run with the same path."""
    lenet = next(p for p in PRESETS if p["id"] == "lenet5")["request"]
    listed = api.post("/api/run", json={**lenet, "path": "0"}).json()["output"]
    r = api.post("/api/run?format=npy", json={**lenet, "path": "0"})
    assert r.status_code == 200, r.text
    got = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert list(got.shape) == listed["shape"]
    whole = np.load(io.BytesIO(api.post("/api/run?format=npy", json=lenet).content), allow_pickle=False)
    assert got.shape != whole.shape  # the layer's, not the network's
    if listed.get("data") is not None:
        np.testing.assert_allclose(got, np.array(listed["data"], dtype=np.float32), rtol=1e-6, atol=1e-6)
