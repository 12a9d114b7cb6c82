"""Working memory of one layer call, as catalog data: a rule per entry (``LayerSpec.memory``).

Each rule answers: bytes one call of this module allocates beyond its inputs, parameters and outputs,
for the given input and output shapes and element size. The estimator adds one temporary the size of
the largest tensor to every call; a rule covers what grows faster than the tensors (im2col columns,
the gates of every recurrent step, a loss's hidden logits). Entries without a rule get the estimator's
family default (losses build their formula term by term: a few temporaries).

Rules read the module's own attributes (``kernel_size``, ``hidden_size``, ``cutoffs`` …), never its
type name: the catalog attaches the rule to the entry it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import nn

Shapes = list[Sequence[int]]
#: (module, input shapes, output shapes, bytes per element) -> extra bytes of one call
MemoryRule = Callable[[nn.Module, Shapes, Shapes, int], int]


def _batch_and_spatial(shape: Sequence[int], rank: int) -> tuple[int, int]:
    """(N, ∏ spatial) of a (N, C, *spatial) or unbatched (C, *spatial) shape."""
    batch = shape[0] if len(shape) == rank + 2 else 1
    return batch, math.prod(shape[-rank:]) if rank else 1


def _largest(shapes: Shapes, elt: int) -> int:
    return max((math.prod(s) * elt for s in shapes), default=0)


def convolution(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """im2col: (C_in/g · ∏k) rows per output position; transposed, col2im: (C_out/g · ∏k) per input position."""
    if not ins or not outs:
        return 0
    rank = len(module.kernel_size)
    kernel = math.prod(module.kernel_size)
    if module.transposed:
        n, positions = _batch_and_spatial(ins[0], rank)
        return n * module.out_channels // module.groups * kernel * positions * elt
    n, positions = _batch_and_spatial(outs[0], rank)
    return n * module.in_channels // module.groups * kernel * positions * elt


def recurrent(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """Every step's gates computed for the whole sequence at once, layer by layer (3 copies)."""
    if not ins:
        return 0
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    directions = 2 if module.bidirectional else 1
    return 3 * math.prod(ins[0][:-1]) * gates * module.hidden_size * directions * elt


def recurrent_cell(gates: int) -> MemoryRule:
    """A cell's gates (``gates`` of them per hidden unit), a few copies."""

    def rule(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
        return 4 * math.prod(ins[0][:-1]) * gates * module.hidden_size * elt if ins else 0

    return rule


def bilinear(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """x1ᵀ A x2 is computed as (x1 · A) first: N · out_features · in2_features, twice."""
    return 2 * math.prod(ins[0][:-1]) * module.out_features * module.in2_features * elt if ins else 0


def ctc(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """The alpha/beta tables (T · N · (2S + 1), float64) and a gradient-sized copy of the log-probabilities."""
    if not ins:
        return 0
    steps, classes = ins[0][0], ins[0][-1]
    batch = ins[0][1] if len(ins[0]) == 3 else 1
    target = ins[1][-1] if len(ins) > 1 and ins[1] else 1
    return 4 * steps * batch * (2 * target + 1) * 8 + 2 * steps * batch * classes * 8


def cross_channel(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """Local response norm: the squared input, its padded copy and the running sum over channels."""
    return 3 * _largest([*ins, *outs], elt)


def adaptive_softmax(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """The head's logits and log-probabilities over every row (N · (shortlist + clusters)), and each tail
    cluster's over the rows whose targets fall in it. Clusters run one after another, but a cluster's
    logits live until the next cluster's replace them: two clusters' rows (at most N) at the widest
    cluster's width, logits and log-probabilities, bound the tails."""
    if not ins:
        return 0
    rows = math.prod(ins[0][:-1])
    head = module.head.out_features
    widest = max((seq[-1].out_features for seq in module.tail), default=0)
    hidden = max((seq[0].out_features for seq in module.tail), default=0)
    return (2 * rows * head + 2 * rows * widest + rows * (hidden + module.in_features)) * elt + rows * 8 * 4


def linear_cross_entropy(module: nn.Module, ins: Shapes, outs: Shapes, elt: int) -> int:
    """The logits of every row over every class (N · C · ∏out_features, the inner Linear's outputs), and
    their log-softmax: two such tensors."""
    return 2 * math.prod(ins[0][:-1]) * module.linear.out_features * elt if ins else 0
