"""The classic architectures, built in: every preset's parameter count is the published figure, and
/api/shape answers for each at its default input within the default memory limit."""

from __future__ import annotations

import pytest
import torch

from app.core import service
from app.core.networks.tree import build, resolve
from app.core.presets import CLASSICS, PRESETS, inception_v3, presets, resnet, vit

REGISTRY = service.default_registry()
SETTINGS = service.Settings()

# the figures torchvision and the papers publish (torchvision's model cards, "num_params")
PUBLISHED = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vgg16": 138_357_544,
    "mobilenet-v2": 3_504_872,
    "densenet121": 7_978_856,
    "inception-v3": 27_161_264,  # with its auxiliary head, torchvision's default; without it below
    "vit-b16": 86_567_656,
}
BY_ID = {p["id"]: p for p in CLASSICS}


def _count(layer: dict) -> int:
    """Parameters of the built module; on the meta device, so VGG-16's 138 million cost no memory."""
    with torch.device("meta"):
        module = build(resolve(REGISTRY, layer))
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset_id", list(PUBLISHED))
def test_parameter_count_is_the_published_one(preset_id):
    preset = BY_ID[preset_id]
    assert preset["param_count"] == PUBLISHED[preset_id]
    assert _count(preset["request"]["layer"]) == PUBLISHED[preset_id]


def test_inception_with_and_without_its_auxiliary_head():
    assert _count(inception_v3(aux_logits=False)) == 23_834_568 == BY_ID["inception-v3"]["param_count_without_aux"]
    # the preset ships with the auxiliary classifier, a second output read from Mixed_6e
    config = BY_ID["inception-v3"]["request"]["layer"]
    assert config == inception_v3(aux_logits=True)
    assert config["outputs"] == ["fc", "AuxLogits"]
    answer = service.shape(REGISTRY, {"layer": config, "inputs": [{"shape": [2, 3, 299, 299]}]}, SETTINGS)
    assert answer["output_shapes"] == [[2, 1000], [2, 1000]]


def test_unet_count():
    # the U-Net as commonly written (BatchNorm, bias-free 3×3 convolutions, transposed-conv upsampling)
    assert _count(BY_ID["unet"]["request"]["layer"]) == 31_037_698


def test_other_depths_and_sizes_follow_the_same_definitions():
    # torchvision's ResNet-34 and -101, and ViT-L/16: the generators are the architecture, not one size
    assert _count(resnet(34)) == 21_797_672
    assert _count(resnet(101)) == 44_549_160
    assert _count(vit(layers=24, heads=16, hidden=1024, mlp=4096)) == 304_326_632


@pytest.mark.parametrize("preset_id", [p["id"] for p in CLASSICS])
def test_shape_answers_for_every_classic_within_the_default_memory_limit(preset_id):
    preset = BY_ID[preset_id]
    answer = service.shape(REGISTRY, preset["request"], SETTINGS)
    n = preset["request"]["inputs"][0]["shape"][0]
    expected = {
        "unet": [[n, 2, *preset["request"]["inputs"][0]["shape"][2:]]],
        "vit-tiny": [[n, 10]],
        "inception-v3": [[n, 1000], [n, 1000]],  # logits and the auxiliary head's
    }.get(preset_id, [[n, 1000]])
    assert answer["output_shapes"] == expected
    assert answer["param_count"] == preset.get("param_count", answer["param_count"])
    assert answer["estimate_bytes"] <= SETTINGS.memory_limit_bytes


def test_the_small_vit_runs_and_its_class_token_is_a_parameter(api):
    preset = BY_ID["vit-tiny"]
    r = api.post("/api/run", json=preset["request"])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [2, 10]
    nodes = {n["name"]: n for n in preset["request"]["layer"]["nodes"]}
    assert nodes["class_token"]["parameter"]["shape"] == [1, 1, 64]
    assert nodes["pos_embedding"]["parameter"]["shape"] == [1, 8 * 8 + 1, 64]


def test_presets_are_listed_with_unique_ids(api):
    listed = api.get("/api/presets").json()["presets"]
    ids = [p["id"] for p in listed]
    assert ids == [p["id"] for p in presets()] == [p["id"] for p in PRESETS + CLASSICS]
    assert len(set(ids)) == len(ids)
