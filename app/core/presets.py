"""Ready-made networks: the tutorial's, a few small ones, and the classic architectures.

The classics (ResNet-18/50, VGG-16, MobileNetV2, DenseNet-121, Inception-v3, U-Net, ViT-B/16) are
written here from their papers' and torchvision's published structure — the layer sizes, not code —
as config-generating functions: ``Sequential`` and ``Residual`` where a chain and a skip suffice, and
``Graph`` where a forward concatenates branches (Inception, DenseNet, U-Net) or holds learnable
tensors and reshapes (ViT's class token and position embedding). They are randomly initialised: no
weights are downloaded. Each one's ``param_count`` is the published figure; tests/test_presets.py
checks every config against it.
"""

from __future__ import annotations

from typing import Any

Config = dict[str, Any]


def _conv(cin: int, cout: int, k: Any, **kw: Any) -> Config:
    return {"type": "Conv2d", "in_channels": cin, "out_channels": cout, "kernel_size": k, **kw}


def _named(name: str, config: Config) -> Config:
    return {**config, "name": name}


def _seq(*layers: Config) -> Config:
    return {"type": "Sequential", "layers": list(layers)}


def _bn(c: int, **kw: Any) -> Config:
    return {"type": "BatchNorm2d", "num_features": c, **kw}


def _relu() -> Config:
    return {"type": "ReLU"}


# ---------------------------------------------------------------------------------------------
# ResNet (He et al. 2016; torchvision's v1.5: the stride sits on the bottleneck's 3×3)
# ---------------------------------------------------------------------------------------------


def _downsample(cin: int, cout: int, stride: int) -> Config:
    return _seq(_conv(cin, cout, 1, stride=stride, bias=False), _bn(cout))


def _basic_block(cin: int, planes: int, stride: int) -> Config:
    body = [
        _named("conv1", _conv(cin, planes, 3, stride=stride, padding=1, bias=False)),
        _named("bn1", _bn(planes)),
        _named("relu", _relu()),
        _named("conv2", _conv(planes, planes, 3, padding=1, bias=False)),
        _named("bn2", _bn(planes)),
    ]
    shortcut = _downsample(cin, planes, stride) if stride != 1 or cin != planes else None
    return _seq(_named("block", {"type": "Residual", "body": body, "shortcut": shortcut}), _named("relu", _relu()))


def _bottleneck(cin: int, planes: int, stride: int) -> Config:
    out = planes * 4
    body = [
        _named("conv1", _conv(cin, planes, 1, bias=False)),
        _named("bn1", _bn(planes)),
        _named("relu1", _relu()),
        _named("conv2", _conv(planes, planes, 3, stride=stride, padding=1, bias=False)),
        _named("bn2", _bn(planes)),
        _named("relu2", _relu()),
        _named("conv3", _conv(planes, out, 1, bias=False)),
        _named("bn3", _bn(out)),
    ]
    shortcut = _downsample(cin, out, stride) if stride != 1 or cin != out else None
    return _seq(_named("block", {"type": "Residual", "body": body, "shortcut": shortcut}), _named("relu", _relu()))


def resnet(depth: int = 18, num_classes: int = 1000) -> Config:
    """ResNet-18/34 (basic blocks) or -50/101/152 (bottlenecks). Input: (N, 3, H, W) -> (N, num_classes)."""
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[depth]
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    make = _bottleneck if bottleneck else _basic_block
    layers = [
        _named("conv1", _conv(3, 64, 7, stride=2, padding=3, bias=False)),
        _named("bn1", _bn(64)),
        _named("relu", _relu()),
        _named("maxpool", {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}),
    ]
    cin = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
        stage_blocks = []
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            stage_blocks.append(make(cin, planes, stride))
            cin = planes * expansion
        layers.append(_named(f"layer{stage + 1}", _seq(*stage_blocks)))
    layers += [
        _named("avgpool", {"type": "AdaptiveAvgPool2d", "output_size": [1, 1]}),
        _named("flatten", {"type": "Flatten"}),
        _named("fc", {"type": "Linear", "in_features": 512 * expansion, "out_features": num_classes}),
    ]
    return _seq(*layers)


# ---------------------------------------------------------------------------------------------
# VGG-16 (Simonyan & Zisserman 2015, configuration D)
# ---------------------------------------------------------------------------------------------

_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16(num_classes: int = 1000) -> Config:
    """VGG-16. Input: (N, 3, 224, 224) -> (N, num_classes)."""
    features: list[Config] = []
    cin = 3
    for v in _VGG16:
        if v == "M":
            features.append({"type": "MaxPool2d", "kernel_size": 2, "stride": 2})
        else:
            features += [_conv(cin, int(v), 3, padding=1), _relu()]
            cin = int(v)
    classifier = [
        {"type": "Linear", "in_features": 512 * 7 * 7, "out_features": 4096},
        _relu(),
        {"type": "Dropout", "p": 0.5},
        {"type": "Linear", "in_features": 4096, "out_features": 4096},
        _relu(),
        {"type": "Dropout", "p": 0.5},
        {"type": "Linear", "in_features": 4096, "out_features": num_classes},
    ]
    return _seq(
        _named("features", _seq(*features)),
        _named("avgpool", {"type": "AdaptiveAvgPool2d", "output_size": [7, 7]}),
        _named("flatten", {"type": "Flatten"}),
        _named("classifier", _seq(*classifier)),
    )


# ---------------------------------------------------------------------------------------------
# MobileNetV2 (Sandler et al. 2018)
# ---------------------------------------------------------------------------------------------


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> Config:
    return _seq(
        _conv(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False),
        _bn(cout),
        {"type": "ReLU6"},
    )


def _inverted_residual(cin: int, cout: int, stride: int, expand: int) -> Config:
    hidden = cin * expand
    body: list[Config] = []
    if expand != 1:
        body.append(_conv_bn_relu6(cin, hidden, 1))
    body += [
        _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
        _conv(hidden, cout, 1, bias=False),
        _bn(cout),
    ]
    if stride == 1 and cin == cout:
        return {"type": "Residual", "body": body, "shortcut": None}
    return _seq(*body)


# expansion t, output channels c, repeats n, first stride s
_MOBILENET_V2 = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(num_classes: int = 1000) -> Config:
    """MobileNetV2 (width 1.0). Input: (N, 3, 224, 224) -> (N, num_classes)."""
    features = [_conv_bn_relu6(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in _MOBILENET_V2:
        for i in range(n):
            features.append(_inverted_residual(cin, c, s if i == 0 else 1, t))
            cin = c
    features.append(_conv_bn_relu6(cin, 1280, 1))
    return _seq(
        _named("features", _seq(*features)),
        _named("pool", {"type": "AdaptiveAvgPool2d", "output_size": [1, 1]}),
        _named("flatten", {"type": "Flatten"}),
        _named(
            "classifier",
            _seq({"type": "Dropout", "p": 0.2}, {"type": "Linear", "in_features": 1280, "out_features": num_classes}),
        ),
    )


# ---------------------------------------------------------------------------------------------
# DenseNet-121 (Huang et al. 2017): each layer's output is concatenated to its input
# ---------------------------------------------------------------------------------------------


def _dense_layer(cin: int, growth: int, bn_size: int) -> Config:
    mid = bn_size * growth
    return {
        "type": "Graph",
        "inputs": ["x"],
        "nodes": [
            {"name": "norm1", "module": _bn(cin), "args": ["x"]},
            {"name": "relu1", "op": "relu", "args": ["norm1"]},
            {"name": "conv1", "module": _conv(cin, mid, 1, bias=False), "args": ["relu1"]},
            {"name": "norm2", "module": _bn(mid), "args": ["conv1"]},
            {"name": "relu2", "op": "relu", "args": ["norm2"]},
            {"name": "conv2", "module": _conv(mid, growth, 3, padding=1, bias=False), "args": ["relu2"]},
            {"name": "cat", "op": "cat", "args": [["x", "conv2"]], "kwargs": {"dim": 1}},
        ],
        "outputs": "cat",
    }


def densenet(
    growth: int = 32,
    blocks: tuple[int, ...] = (6, 12, 24, 16),
    init: int = 64,
    bn_size: int = 4,
    num_classes: int = 1000,
) -> Config:
    """DenseNet-BC (121 by default). Input: (N, 3, H, W) -> (N, num_classes)."""
    features = [
        _named("conv0", _conv(3, init, 7, stride=2, padding=3, bias=False)),
        _named("norm0", _bn(init)),
        _named("relu0", _relu()),
        _named("pool0", {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}),
    ]
    c = init
    for b, n in enumerate(blocks):
        layers = []
        for i in range(n):
            layers.append(_named(f"denselayer{i + 1}", _dense_layer(c, growth, bn_size)))
            c += growth
        features.append(_named(f"denseblock{b + 1}", _seq(*layers)))
        if b < len(blocks) - 1:
            transition = _seq(
                _named("norm", _bn(c)),
                _named("relu", _relu()),
                _named("conv", _conv(c, c // 2, 1, bias=False)),
                _named("pool", {"type": "AvgPool2d", "kernel_size": 2, "stride": 2}),
            )
            features.append(_named(f"transition{b + 1}", transition))
            c //= 2
    features.append(_named("norm5", _bn(c)))
    return _seq(
        _named("features", _seq(*features)),
        _named("relu", _relu()),
        _named("pool", {"type": "AdaptiveAvgPool2d", "output_size": [1, 1]}),
        _named("flatten", {"type": "Flatten"}),
        _named("classifier", {"type": "Linear", "in_features": c, "out_features": num_classes}),
    )


# ---------------------------------------------------------------------------------------------
# Inception-v3 (Szegedy et al. 2016): parallel branches concatenated on the channels
# ---------------------------------------------------------------------------------------------


def _bc(cin: int, cout: int, k: Any = None, **kw: Any) -> Config:
    """BasicConv2d: a convolution without bias, BatchNorm (eps 0.001), ReLU."""
    kernel = kw.pop("kernel_size", k)
    return _seq(
        _named("conv", _conv(cin, cout, kernel, bias=False, **kw)),
        _named("bn", _bn(cout, eps=0.001)),
        _named("relu", _relu()),
    )


class _Branches:
    """A Graph under construction: module nodes chained by name, ops between them."""

    def __init__(self) -> None:
        self.nodes: list[Config] = []

    def module(self, name: str, config: Config, arg: str) -> str:
        self.nodes.append({"name": name, "module": config, "args": [arg]})
        return name

    def op(self, name: str, op: str, args: list[Any], **kwargs: Any) -> str:
        node: Config = {"name": name, "op": op, "args": args}
        if kwargs:
            node["kwargs"] = kwargs
        self.nodes.append(node)
        return name

    def chain(self, prefix: str, convs: list[tuple[str, Config]], arg: str) -> str:
        for name, config in convs:
            arg = self.module(f"{prefix}{name}", config, arg)
        return arg

    def graph(self, outputs: Any) -> Config:
        return {"type": "Graph", "inputs": ["x"], "nodes": self.nodes, "outputs": outputs}


def _avg_pool_3x3(g: _Branches) -> str:
    return g.op("avg_pool", "avg_pool2d", ["x"], kernel_size=3, stride=1, padding=1)


def _inception_a(cin: int, pool_features: int) -> Config:
    g = _Branches()
    b1 = g.module("branch1x1", _bc(cin, 64, 1), "x")
    b5 = g.chain("branch5x5_", [("1", _bc(cin, 48, 1)), ("2", _bc(48, 64, 5, padding=2))], "x")
    b3 = g.chain(
        "branch3x3dbl_",
        [("1", _bc(cin, 64, 1)), ("2", _bc(64, 96, 3, padding=1)), ("3", _bc(96, 96, 3, padding=1))],
        "x",
    )
    bp = g.module("branch_pool", _bc(cin, pool_features, 1), _avg_pool_3x3(g))
    g.op("cat", "cat", [[b1, b5, b3, bp]], dim=1)
    return g.graph("cat")


def _inception_b(cin: int) -> Config:
    g = _Branches()
    b3 = g.module("branch3x3", _bc(cin, 384, 3, stride=2), "x")
    bd = g.chain(
        "branch3x3dbl_",
        [("1", _bc(cin, 64, 1)), ("2", _bc(64, 96, 3, padding=1)), ("3", _bc(96, 96, 3, stride=2))],
        "x",
    )
    bp = g.op("max_pool", "max_pool2d", ["x"], kernel_size=3, stride=2)
    g.op("cat", "cat", [[b3, bd, bp]], dim=1)
    return g.graph("cat")


def _inception_c(cin: int, c7: int) -> Config:
    g = _Branches()
    row, col = {"kernel_size": [1, 7], "padding": [0, 3]}, {"kernel_size": [7, 1], "padding": [3, 0]}
    b1 = g.module("branch1x1", _bc(cin, 192, 1), "x")
    b7 = g.chain("branch7x7_", [("1", _bc(cin, c7, 1)), ("2", _bc(c7, c7, **row)), ("3", _bc(c7, 192, **col))], "x")
    bd = g.chain(
        "branch7x7dbl_",
        [
            ("1", _bc(cin, c7, 1)),
            ("2", _bc(c7, c7, **col)),
            ("3", _bc(c7, c7, **row)),
            ("4", _bc(c7, c7, **col)),
            ("5", _bc(c7, 192, **row)),
        ],
        "x",
    )
    bp = g.module("branch_pool", _bc(cin, 192, 1), _avg_pool_3x3(g))
    g.op("cat", "cat", [[b1, b7, bd, bp]], dim=1)
    return g.graph("cat")


def _inception_d(cin: int) -> Config:
    g = _Branches()
    b3 = g.chain("branch3x3_", [("1", _bc(cin, 192, 1)), ("2", _bc(192, 320, 3, stride=2))], "x")
    b7 = g.chain(
        "branch7x7x3_",
        [
            ("1", _bc(cin, 192, 1)),
            ("2", _bc(192, 192, kernel_size=[1, 7], padding=[0, 3])),
            ("3", _bc(192, 192, kernel_size=[7, 1], padding=[3, 0])),
            ("4", _bc(192, 192, 3, stride=2)),
        ],
        "x",
    )
    bp = g.op("max_pool", "max_pool2d", ["x"], kernel_size=3, stride=2)
    g.op("cat", "cat", [[b3, b7, bp]], dim=1)
    return g.graph("cat")


def _inception_e(cin: int) -> Config:
    g = _Branches()
    row, col = {"kernel_size": [1, 3], "padding": [0, 1]}, {"kernel_size": [3, 1], "padding": [1, 0]}
    b1 = g.module("branch1x1", _bc(cin, 320, 1), "x")
    s = g.module("branch3x3_1", _bc(cin, 384, 1), "x")
    a = g.module("branch3x3_2a", _bc(384, 384, **row), s)
    b = g.module("branch3x3_2b", _bc(384, 384, **col), s)
    b3 = g.op("branch3x3", "cat", [[a, b]], dim=1)
    d = g.chain("branch3x3dbl_", [("1", _bc(cin, 448, 1)), ("2", _bc(448, 384, 3, padding=1))], "x")
    da = g.module("branch3x3dbl_3a", _bc(384, 384, **row), d)
    db = g.module("branch3x3dbl_3b", _bc(384, 384, **col), d)
    bd = g.op("branch3x3dbl", "cat", [[da, db]], dim=1)
    bp = g.module("branch_pool", _bc(cin, 192, 1), _avg_pool_3x3(g))
    g.op("cat", "cat", [[b1, b3, bd, bp]], dim=1)
    return g.graph("cat")


def _inception_aux(cin: int, num_classes: int) -> Config:
    return _seq(
        _named("pool", {"type": "AvgPool2d", "kernel_size": 5, "stride": 3}),
        _named("conv0", _bc(cin, 128, 1)),
        _named("conv1", _bc(128, 768, 5)),
        _named("avgpool", {"type": "AdaptiveAvgPool2d", "output_size": [1, 1]}),
        _named("flatten", {"type": "Flatten"}),
        _named("fc", {"type": "Linear", "in_features": 768, "out_features": num_classes}),
    )


def inception_v3(num_classes: int = 1000, aux_logits: bool = True) -> Config:
    """Inception-v3. Input: (N, 3, 299, 299) -> (N, num_classes), and the auxiliary head's (N, num_classes)."""
    stem = [
        ("Conv2d_1a_3x3", _bc(3, 32, 3, stride=2)),
        ("Conv2d_2a_3x3", _bc(32, 32, 3)),
        ("Conv2d_2b_3x3", _bc(32, 64, 3, padding=1)),
        ("maxpool1", {"type": "MaxPool2d", "kernel_size": 3, "stride": 2}),
        ("Conv2d_3b_1x1", _bc(64, 80, 1)),
        ("Conv2d_4a_3x3", _bc(80, 192, 3)),
        ("maxpool2", {"type": "MaxPool2d", "kernel_size": 3, "stride": 2}),
        ("Mixed_5b", _inception_a(192, 32)),
        ("Mixed_5c", _inception_a(256, 64)),
        ("Mixed_5d", _inception_a(288, 64)),
        ("Mixed_6a", _inception_b(288)),
        ("Mixed_6b", _inception_c(768, 128)),
        ("Mixed_6c", _inception_c(768, 160)),
        ("Mixed_6d", _inception_c(768, 160)),
        ("Mixed_6e", _inception_c(768, 192)),
    ]
    g = _Branches()
    x = "x"
    for name, config in stem:
        x = g.module(name, config, x)
    mixed_6e = x
    if aux_logits:
        g.module("AuxLogits", _inception_aux(768, num_classes), mixed_6e)
    for name, config in [
        ("Mixed_7a", _inception_d(768)),
        ("Mixed_7b", _inception_e(1280)),
        ("Mixed_7c", _inception_e(2048)),
    ]:
        x = g.module(name, config, x)
    x = g.module("avgpool", {"type": "AdaptiveAvgPool2d", "output_size": [1, 1]}, x)
    x = g.module("dropout", {"type": "Dropout", "p": 0.5}, x)
    x = g.op("flatten", "flatten", [x], start_dim=1)
    x = g.module("fc", {"type": "Linear", "in_features": 2048, "out_features": num_classes}, x)
    return g.graph([x, "AuxLogits"] if aux_logits else x)


# ---------------------------------------------------------------------------------------------
# U-Net (Ronneberger et al. 2015, with BatchNorm and same padding, as commonly written)
# ---------------------------------------------------------------------------------------------


def _double_conv(cin: int, cout: int) -> Config:
    return _seq(
        _conv(cin, cout, 3, padding=1, bias=False),
        _bn(cout),
        _relu(),
        _conv(cout, cout, 3, padding=1, bias=False),
        _bn(cout),
        _relu(),
    )


def _up(cin: int, cout: int) -> Config:
    """Upsample the deeper map, concatenate the skip, double conv. Inputs: (deep, skip)."""
    return {
        "type": "Graph",
        "inputs": ["x1", "x2"],
        "nodes": [
            {
                "name": "up",
                "module": {
                    "type": "ConvTranspose2d",
                    "in_channels": cin,
                    "out_channels": cin // 2,
                    "kernel_size": 2,
                    "stride": 2,
                },
                "args": ["x1"],
            },
            {"name": "cat", "op": "cat", "args": [["x2", "up"]], "kwargs": {"dim": 1}},
            {"name": "conv", "module": _double_conv(cin, cout), "args": ["cat"]},
        ],
        "outputs": "conv",
    }


def unet(in_channels: int = 3, num_classes: int = 2, base: int = 64) -> Config:
    """U-Net, four levels down and up. Input: (N, in_channels, H, W), H and W divisible by 16 ->
    (N, num_classes, H, W)."""
    widths = [base * 2**k for k in range(5)]
    g = _Branches()
    skips = [g.module("inc", _double_conv(in_channels, widths[0]), "x")]
    for k in range(1, 5):
        down = _seq({"type": "MaxPool2d", "kernel_size": 2}, _double_conv(widths[k - 1], widths[k]))
        skips.append(g.module(f"down{k}", down, skips[-1]))
    x = skips[-1]
    for k in range(1, 5):
        name = f"up{k}"
        g.nodes.append({"name": name, "module": _up(widths[5 - k], widths[4 - k]), "args": [x, skips[4 - k]]})
        x = name
    g.module("outc", _conv(widths[0], num_classes, 1), x)
    return g.graph("outc")


# ---------------------------------------------------------------------------------------------
# Vision Transformer (Dosovitskiy et al. 2021): patches, a class token, a position embedding
# ---------------------------------------------------------------------------------------------


def vit(
    image_size: int = 224,
    patch_size: int = 16,
    layers: int = 12,
    heads: int = 12,
    hidden: int = 768,
    mlp: int = 3072,
    num_classes: int = 1000,
) -> Config:
    """ViT (B/16 by default). Input: (N, 3, image_size, image_size) -> (N, num_classes)."""
    tokens = (image_size // patch_size) ** 2 + 1
    encoder = [
        _named(
            f"encoder_layer_{i}",
            {
                "type": "TransformerEncoderLayer",
                "d_model": hidden,
                "nhead": heads,
                "dim_feedforward": mlp,
                "dropout": 0.0,
                "activation": "gelu",
                "layer_norm_eps": 1e-6,
                "batch_first": True,
                "norm_first": True,
            },
        )
        for i in range(layers)
    ]
    g = _Branches()
    g.module("conv_proj", _conv(3, hidden, patch_size, stride=patch_size), "x")
    g.op("patches", "flatten", ["conv_proj"], start_dim=2)  # (N, hidden, tokens - 1)
    g.op("sequence", "transpose", ["patches"], dim0=1, dim1=2)  # (N, tokens - 1, hidden)
    g.op("batch", "size", ["x"], dim=0)
    g.nodes.append({"name": "class_token", "parameter": {"shape": [1, 1, hidden], "init": "zeros"}})
    g.op("class_tokens", "expand", ["class_token"], size=["batch", -1, -1])
    g.op("tokens", "cat", [["class_tokens", "sequence"]], dim=1)
    g.nodes.append({"name": "pos_embedding", "parameter": {"shape": [1, tokens, hidden], "init": "randn"}})
    g.op("embedded", "add", ["tokens", "pos_embedding"])
    g.module("layers", _seq(*encoder), "embedded")
    g.module("ln", {"type": "LayerNorm", "normalized_shape": [hidden], "eps": 1e-6}, "layers")
    g.op("class_output", "getitem", ["ln", [{"slice": [None, None, None]}, 0]])
    g.module("head", {"type": "Linear", "in_features": hidden, "out_features": num_classes}, "class_output")
    return g.graph("head")


PRESETS: list[dict[str, Any]] = [
    {
        "id": "tutorial-neuralnet",
        "name": "Tutorial: NeuralNet (BasicLinear 10→15→20)",
        "description": "The tutorial's first network: two of its custom BasicLinear layers.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "BasicLinear", "name": "layer1", "input_features": 10, "output_features": 15},
                    {"type": "BasicLinear", "name": "layer2", "input_features": 15, "output_features": 20},
                ],
            },
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    },
    {
        "id": "tutorial-residual-block",
        "name": "Tutorial: SimpleResidualBlock(10, 20)",
        "description": "fc1 → ReLU → fc2, plus a Linear downsample of the input because the sizes differ.",
        "request": {
            "layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    },
    {
        "id": "tutorial-residual-net",
        "name": "Tutorial: NeuralNet of two residual blocks (10→50→50)",
        "description": "The tutorial's network of SimpleResidualBlocks; only the first needs a downsample.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "SimpleResidualBlock", "name": "block1", "in_features": 10, "out_features": 50},
                    {"type": "SimpleResidualBlock", "name": "block2", "in_features": 50, "out_features": 50},
                ],
            },
            "inputs": [{"shape": [5, 10]}],
            "seed": 42,
        },
    },
    {
        "id": "lenet5",
        "name": "LeNet-5",
        "description": "LeCun et al. (1998) on a 28×28 image padded to 32×32: conv, tanh, average pooling, three Linear layers.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    _conv(1, 6, 5, padding=2),
                    {"type": "Tanh"},
                    {"type": "AvgPool2d", "kernel_size": 2},
                    _conv(6, 16, 5),
                    {"type": "Tanh"},
                    {"type": "AvgPool2d", "kernel_size": 2},
                    {"type": "Flatten"},
                    {"type": "Linear", "in_features": 400, "out_features": 120},
                    {"type": "Tanh"},
                    {"type": "Linear", "in_features": 120, "out_features": 84},
                    {"type": "Tanh"},
                    {"type": "Linear", "in_features": 84, "out_features": 10},
                ],
            },
            "inputs": [{"shape": [1, 1, 28, 28]}],
            "seed": 0,
        },
    },
    {
        "id": "small-cnn-batchnorm",
        "name": "Small CNN with BatchNorm",
        "description": "Two conv → BatchNorm → ReLU stages, global average pooling and a classifier.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    _conv(3, 16, 3, padding=1),
                    {"type": "BatchNorm2d", "num_features": 16},
                    {"type": "ReLU"},
                    {"type": "MaxPool2d", "kernel_size": 2},
                    _conv(16, 32, 3, padding=1),
                    {"type": "BatchNorm2d", "num_features": 32},
                    {"type": "ReLU"},
                    {"type": "AdaptiveAvgPool2d", "output_size": 1},
                    {"type": "Flatten"},
                    {"type": "Linear", "in_features": 32, "out_features": 10},
                ],
            },
            "inputs": [{"shape": [2, 3, 32, 32]}],
            "seed": 0,
        },
    },
    {
        "id": "resnet-basic-block",
        "name": "ResNet basic block",
        "description": "He et al. (2016): conv-BN-ReLU-conv-BN plus the identity, then ReLU.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {
                        "type": "Residual",
                        "name": "block",
                        "body": [
                            _conv(16, 16, 3, padding=1, bias=False),
                            {"type": "BatchNorm2d", "num_features": 16},
                            {"type": "ReLU"},
                            _conv(16, 16, 3, padding=1, bias=False),
                            {"type": "BatchNorm2d", "num_features": 16},
                        ],
                        "shortcut": None,
                    },
                    {"type": "ReLU", "name": "relu"},
                ],
            },
            "inputs": [{"shape": [1, 16, 8, 8]}],
            "seed": 0,
        },
    },
    {
        "id": "text-self-attention",
        "name": "Text → Embedding → self-attention",
        "description": "A short sentence, tokenised by words, embedded (d_model 16) and through one "
        "TransformerEncoderLayer (2 heads): its attention weights, token × token.",
        "request": {
            "layer": {
                "type": "Sequential",
                "layers": [
                    {"type": "Embedding", "name": "embed", "num_embeddings": 64, "embedding_dim": 16},
                    {
                        "type": "TransformerEncoderLayer",
                        "name": "encoder",
                        "d_model": 16,
                        "nhead": 2,
                        "dim_feedforward": 32,
                        "dropout": 0.0,
                        "batch_first": True,
                    },
                ],
            },
            "inputs": [{"text": "the cat sat on the mat", "tokenize": "whitespace"}],
            "seed": 0,
        },
    },
    {
        "id": "tiny-transformer-encoder",
        "name": "Tiny transformer encoder layer",
        "description": "Self-attention and a feed-forward block with residuals and LayerNorm (d_model 16, 2 heads).",
        "request": {
            "layer": {
                "type": "TransformerEncoderLayer",
                "d_model": 16,
                "nhead": 2,
                "dim_feedforward": 32,
                "dropout": 0.0,
                "batch_first": True,
            },
            "inputs": [{"shape": [2, 5, 16]}],
            "seed": 0,
        },
    },
]


def _classic(
    id_: str,
    name: str,
    description: str,
    layer: Config,
    shape: list[int],
    param_count: int | None,
    *,
    train: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    preset = {
        "id": id_,
        "name": name,
        # the classic architectures: full size, so a real run takes seconds (DenseNet and Inception tens)
        "group": "classic",
        "description": description,
        "request": {"layer": layer, "inputs": [{"shape": shape}], "seed": 0, **({} if train else {"train": False})},
        **extra,
    }
    if param_count is not None:
        # the figure the papers and torchvision publish; tests/test_presets.py checks the config against it
        preset["param_count"] = param_count
    return preset


CLASSICS: list[dict[str, Any]] = [
    _classic(
        "resnet18",
        "ResNet-18",
        "He et al. (2016): a 7×7 stem, four stages of two basic residual blocks (64→512 channels), "
        "global average pooling, a 1000-way classifier. Randomly initialised.",
        resnet(18),
        [1, 3, 224, 224],
        11_689_512,
    ),
    _classic(
        "resnet50",
        "ResNet-50",
        "He et al. (2016): bottleneck blocks (1×1, 3×3, 1×1, four times wider out) in stages of 3, 4, 6 "
        "and 3; a 1×1 convolution on the shortcut where the shape changes. Randomly initialised.",
        resnet(50),
        [1, 3, 224, 224],
        25_557_032,
    ),
    _classic(
        "vgg16",
        "VGG-16",
        "Simonyan & Zisserman (2015), configuration D: thirteen 3×3 convolutions in five stages, then "
        "three Linear layers (most of its 138 million weights are in the first). Randomly initialised.",
        vgg16(),
        [1, 3, 224, 224],
        138_357_544,
    ),
    _classic(
        "mobilenet-v2",
        "MobileNetV2",
        "Sandler et al. (2018): inverted residual blocks — a 1×1 expansion, a depthwise 3×3, a linear 1×1 "
        "projection — with the identity added where the shape allows. Randomly initialised.",
        mobilenet_v2(),
        [1, 3, 224, 224],
        3_504_872,
    ),
    _classic(
        "densenet121",
        "DenseNet-121",
        "Huang et al. (2017): in each dense block every layer's 32 new channels are concatenated to its "
        "input (a Graph with cat); transitions halve channels and size. Randomly initialised.",
        densenet(),
        [1, 3, 224, 224],
        7_978_856,
    ),
    _classic(
        "inception-v3",
        "Inception-v3",
        "Szegedy et al. (2016): parallel 1×1, 3×3, factorised 7×7 and pooling branches concatenated on the "
        "channels (Graphs with cat). As torchvision builds it by default, with the auxiliary classifier on "
        "Mixed_6e as a second output (the network returns (logits, aux_logits)); inception_v3(aux_logits=False) "
        "leaves it out: 23,834,568 parameters. In eval mode (train: false): on one image the auxiliary "
        "head's BatchNorm sees a 1×1 map, where batch statistics (training mode) need more than one value "
        "per channel. Randomly initialised.",
        inception_v3(),
        [1, 3, 299, 299],
        27_161_264,
        param_count_without_aux=23_834_568,
        train=False,
    ),
    _classic(
        "unet",
        "U-Net",
        "Ronneberger et al. (2015), as commonly written with BatchNorm and padded convolutions: four "
        "levels down, four up, each up level concatenating the skip from its level (a Graph with cat).",
        unet(),
        [1, 3, 128, 128],
        None,  # no single published figure; 31,037,698 at these sizes (tests/test_presets.py)
    ),
    _classic(
        "vit-b16",
        "ViT-B/16",
        "Dosovitskiy et al. (2021): 16×16 patches embedded by a strided convolution, a learnable class "
        "token and position embedding (parameter nodes), twelve pre-norm transformer encoder layers, the "
        "class token's output classified. Randomly initialised.",
        vit(),
        [1, 3, 224, 224],
        86_567_656,
    ),
    _classic(
        "vit-tiny",
        "ViT, small (same design as B/16)",
        "The ViT-B/16 design at a size that runs in a moment: 32×32 images in 4×4 patches, 4 layers of "
        "width 64 with 4 heads, 10 classes.",
        vit(image_size=32, patch_size=4, layers=4, heads=4, hidden=64, mlp=128, num_classes=10),
        [2, 3, 32, 32],
        None,
    ),
]


def presets() -> list[dict[str, Any]]:
    return PRESETS + CLASSICS
