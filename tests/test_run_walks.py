"""The run path's own module walks say exactly what torch's walks say; container subtotals as before.

``named_modules`` and ``named_parameters`` of app.core.networks.trace stand in for torch's
(a stack instead of a generator per level); the trace's paths, the answer's parameter list and
the totals rest on them, so they must list the same modules and parameters, under the same
names, in the same order — a module or parameter shared by two paths included.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from app.core.networks.trace import named_modules, named_parameters, subtotals, totals, tracing
from app.core.networks.tree import build, resolve
from app.core.presets import resnet


@st.composite
def _modules(draw: st.DrawFn) -> nn.Module:
    """A random tree of Sequentials over a small palette of leaves, some of them shared (the same module
    at two paths) and some with a weight tied to another's, some slots None."""
    pool: list[nn.Module] = draw(
        st.lists(st.sampled_from(["linear", "relu", "bn"]), min_size=1, max_size=3).map(
            lambda kinds: [
                nn.Linear(2, 2) if k == "linear" else nn.ReLU() if k == "relu" else nn.BatchNorm1d(2) for k in kinds
            ]
        )
    )

    def tree(level: int) -> nn.Module:
        n = draw(st.integers(0 if level else 1, 4))
        seq = nn.Sequential()
        for i in range(n):
            choice = draw(st.integers(0, 3))
            if choice == 0 and level < 3:
                seq.add_module(str(i), tree(level + 1))
            elif choice == 1:
                seq.add_module(f"none{i}", None)
            else:
                seq.add_module(str(i), draw(st.sampled_from(pool)))  # the same module at several paths
        return seq

    root = tree(0)
    linears = [m for m in pool if isinstance(m, nn.Linear)]
    if len(linears) > 1 and draw(st.booleans()):
        linears[1].weight = linears[0].weight  # a tied weight: one parameter in two modules
    return root


@settings(max_examples=150, deadline=None)
@given(_modules())
def test_walks_equal_torchs(module):
    assert [(p, id(m)) for p, m in named_modules(module)] == [(p, id(m)) for p, m in module.named_modules()]
    assert [(n, id(p)) for n, p in named_parameters(module)] == [(n, id(p)) for n, p in module.named_parameters()]


def test_walks_equal_torchs_on_resnet(registry):
    with torch.device("meta"):
        module = build(resolve(registry, resnet(18)))
    assert [(p, id(m)) for p, m in named_modules(module)] == [(p, id(m)) for p, m in module.named_modules()]
    assert [(n, id(p)) for n, p in named_parameters(module)] == [(n, id(p)) for n, p in module.named_parameters()]


def _subtotals_by_split(entries):
    """The container totals as the trace first added them up: each leaf's path split and joined per level."""
    out = {}
    for e in entries:
        if not e["leaf"] and e["path"] not in out:
            out[e["path"]] = {"type": e["type"], "param_count": e["param_count"], "macs": 0, "macs_complete": True, "activation_bytes": 0, "layers": 0}  # fmt: skip
    for e in entries:
        if not e["leaf"]:
            continue
        parts = e["path"].split(".")
        for k in range(1, len(parts)):
            box = out.get(".".join(parts[:k]))
            if box is None:
                continue
            if e.get("macs") is None:
                box["macs_complete"] = False
            else:
                box["macs"] += e["macs"]
            box["activation_bytes"] += e.get("activation_bytes") or 0
            box["layers"] += 1
    return out


_names = st.sampled_from(["0", "1", "10", "layer1", "body", "a"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(_names, min_size=1, max_size=4).map(".".join),
            st.booleans(),
            st.one_of(st.none(), st.integers(0, 10**6)),
            st.one_of(st.none(), st.integers(0, 10**6)),
        ),
        max_size=30,
    )
)
def test_subtotals_equal_the_split_and_join_sums(rows):
    entries = [
        {"path": p, "type": "T", "param_count": 3, "leaf": leaf, "macs": m, "activation_bytes": a}
        for p, leaf, m, a in rows
    ]
    assert subtotals(entries) == _subtotals_by_split(entries)


def test_subtotals_of_a_real_trace(registry):
    with torch.device("meta"):
        module = build(resolve(registry, resnet(18)))
    sink = {}
    with torch.no_grad(), tracing(module, sink):
        module(torch.empty(2, 3, 32, 32, device="meta"))
    assert subtotals(sink["trace"]) == _subtotals_by_split(sink["trace"])
    assert subtotals(sink["trace"])["layer1"]["layers"] > 0


@settings(max_examples=100, deadline=None)
@given(_modules(), st.booleans())
def test_totals_count_each_parameter_once_as_torch_lists_them(module, half):
    """Shared modules and tied weights counted once, each parameter at its own element size."""
    first = next(module.parameters(), None)
    if half and first is not None:  # a parameter of another dtype: the bytes are each parameter's own
        first.data = first.data.double()
    params = [p for _, p in module.named_parameters()]
    want = (sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params))
    for walk in (None, named_modules(module)):
        got = totals([], module, walk)
        assert (got["param_count"], got["param_bytes"]) == want
