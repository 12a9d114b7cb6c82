"""RNN, LSTM, GRU and their cells: Input: (L, N, H_in) -> (L, N, D·H_out), h_n, c_n."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from app.core.catalog import memory
from app.core.catalog.entries import MAX_REPEATS, declared, hooked, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.errors import InvalidRequest
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
)
from app.core.shapes.expr import Dim, Sym


def _pack_lstm_state(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """LSTM/LSTMCell take their state as one tuple: (input, h_0, c_0) -> (input, (h_0, c_0))."""
    if len(args) == 3:
        return (args[0], (args[1], args[2]))
    if len(args) == 2 and isinstance(args[1], torch.Tensor):
        raise InvalidRequest(
            f"{type(module).__name__} takes its initial state as h_0 and c_0 together: give both or neither",
            field="inputs",
        )
    return None


def _rnn_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """output (L, N, D·H_out), h_n (D·num_layers, N, H_out), c_n (D·num_layers, N, H_cell)."""
    m = ctx.module
    lstm = isinstance(m, nn.LSTM)
    x = ctx.shape(0)
    rank = ctx.expect_rank((2, 3))
    batched = rank == 3
    if x[-1] != m.input_size:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be input_size={m.input_size}, got {x[-1]} "
            f"(input shape {fmt_shape(x)})"
        )
    if lstm and len(ctx.shapes) == 2:
        raise ctx.fail("takes its initial state as h_0 and c_0 together: give both or neither", 1)
    D = Sym("D", 2 if m.bidirectional else 1)
    proj = getattr(m, "proj_size", 0)
    h_out = Sym("proj_size", proj) if proj > 0 else Sym("hidden_size", m.hidden_size)
    if batched:
        N, L = (x[0], x[1]) if m.batch_first else (x[1], x[0])
        n_dim = [Dim("N", Sym("N", N))]
        time = (
            [Dim("N", Sym("N", N)), Dim("L", Sym("L", L))]
            if m.batch_first
            else [Dim("L", Sym("L", L)), Dim("N", Sym("N", N))]
        )
    else:
        n_dim = []
        time = [Dim("L", Sym("L", x[0]))]
    layers = Dim("D·num_layers", D * Sym("num_layers", m.num_layers))
    output = time + [Dim("D·H_out", D * h_out)]
    h_n = [layers] + n_dim + [Dim("H_out", h_out)]
    outs = [output, h_n]
    if lstm:
        outs.append([layers] + n_dim + [Dim("H_cell", Sym("hidden_size", m.hidden_size))])
    for i in range(1, len(ctx.shapes)):
        want = tuple(d.expr.int_value() for d in outs[i])
        if tuple(ctx.shape(i)) != want:
            name = ctx.spec.inputs[i].name
            conv = "(D·num_layers, N, H_out)" if i == 1 else "(D·num_layers, N, H_cell)"
            raise ctx.fail(
                f"expects {name} (input {i}) to have shape {conv} = {fmt_shape(want)}, got {fmt_shape(ctx.shape(i))}", i
            )
    return outs


def _cell_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """input (N, H_in) -> h' (N, H_out) (and c' (N, H_out) for LSTMCell)."""
    m = ctx.module
    x = ctx.shape(0)
    rank = ctx.expect_rank((1, 2))
    if x[-1] != m.input_size:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be input_size={m.input_size}, got {x[-1]} "
            f"(input shape {fmt_shape(x)})"
        )
    if isinstance(m, nn.LSTMCell) and len(ctx.shapes) == 2:
        raise ctx.fail("takes its initial state as h_0 and c_0 together: give both or neither", 1)
    state = ([Dim("N", Sym("N", x[0]))] if rank == 2 else []) + [Dim("H_out", Sym("hidden_size", m.hidden_size))]
    want = tuple(d.expr.int_value() for d in state)
    for i in range(1, len(ctx.shapes)):
        if tuple(ctx.shape(i)) != want:
            raise ctx.fail(
                f"expects {ctx.spec.inputs[i].name} (input {i}) to have shape (N, H_out) = {fmt_shape(want)}, "
                f"got {fmt_shape(ctx.shape(i))}",
                i,
            )
    return [state, list(state)] if isinstance(m, nn.LSTMCell) else [state]


def _rnn_params(cls: type, *, nonlinearity: bool = False, proj: bool = False) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {
        "input_size": {"type": "int", "required": True, "minimum": 1},
        "hidden_size": {"type": "int", "required": True, "minimum": 1},
        "num_layers": {"type": "int", "default": 1, "minimum": 1, "maximum": MAX_REPEATS},
    }
    if nonlinearity:
        params["nonlinearity"] = {"type": "str", "default": "tanh", "choices": ["tanh", "relu"]}
    params.update(
        {
            "bias": {"type": "bool", "default": True},
            "batch_first": {"type": "bool", "default": False},
            "dropout": {"type": "float", "default": 0.0, "minimum": 0, "maximum": 1},
            "bidirectional": {"type": "bool", "default": False},
        }
    )
    if proj:
        params["proj_size"] = {"type": "int", "default": 0, "minimum": 0}
    return declared(cls, **params)


def register(reg: Registry) -> None:
    seq = "(L, N, H_in) or (L, H_in)"
    state = "(D*num_layers, N, H_out) or (D*num_layers, H_out)"
    for name, extra in (("RNN", {"nonlinearity": True}), ("LSTM", {"proj": True}), ("GRU", {})):
        cls = getattr(nn, name)
        params = _rnn_params(cls, **extra)
        inputs = [inp(seq), inp(state, name="h_0", optional=True)]
        outputs = ["output", "h_n"]
        kw: dict[str, Any] = {}
        if name == "LSTM":
            inputs.append(inp("(D*num_layers, N, H_cell) or (D*num_layers, H_cell)", name="c_0", optional=True))
            outputs.append("c_n")
            kw["factory"] = hooked("LSTM", _pack_lstm_state)
        spec = torch_entry(
            reg,
            name,
            "recurrent",
            {"input_size": 10, "hidden_size": 20},
            inputs,
            [shape(5, 3, 10)],
            _rnn_rule,
            outputs=outputs,
            params=params,
            order=list(params),
            memory=memory.recurrent,
            **kw,
        )
        if name == "LSTM":
            spec.code_call = {3: "{0}, ({1}, {2})"}
    cell_state = "(N, H_out) or (H_out)"
    for name in ("RNNCell", "LSTMCell", "GRUCell"):
        inputs = [inp("(N, H_in) or (H_in)"), inp(cell_state, name="h_0", optional=True)]
        outputs = ["h_1"]
        kw = {}
        overrides: dict[str, dict[str, Any]] = {}
        if name == "LSTMCell":
            inputs.append(inp(cell_state, name="c_0", optional=True))
            outputs.append("c_1")
            kw["factory"] = hooked("LSTMCell", _pack_lstm_state)
        if name == "RNNCell":
            overrides["nonlinearity"] = {"choices": ["tanh", "relu"]}
        cell = torch_entry(
            reg,
            name,
            "recurrent",
            {"input_size": 10, "hidden_size": 20},
            inputs,
            [shape(3, 10)],
            _cell_rule,
            outputs=outputs,
            params=overrides,
            memory=memory.recurrent_cell({"LSTMCell": 4, "GRUCell": 3}.get(name, 1)),
            **kw,
        )
        if name == "LSTMCell":
            cell.code_call = {3: "{0}, ({1}, {2})"}
