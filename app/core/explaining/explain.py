"""The tutorial's "manual computation" cell, generalised: one output element, recomputed by hand.

``value`` is torch's output at the index; ``manual`` is recomputed in float64 from the listed
terms (inputs, weights, bias), and ``match`` says whether they agree to the dtype's tolerance.
Window positions for convolutions and pooling come from :mod:`app.core.explaining.windows` (asked of torch).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from app.core import tensors
from app.core.catalog.families.opaque import NOT_COMPUTED
from app.core.catalog.spec import LayerSpec
from app.core.errors import NotExplainable
from app.core.explaining.windows import Geometry, geometry_for, group_inputs, pad_reads

_TOL = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
}


def _num(x: float) -> Any:
    return tensors._clean(float(x))


def _fmt(x: float) -> str:
    """A number in the explanation's text, with the minus sign (U+2212) the page writes everywhere."""
    text = f"{x:.6g}" if math.isfinite(x) else str(x)
    return text.replace("-", "\u2212")


def normalise_index(index: list[int], shape: tuple[int, ...], *, what: str = "output") -> tuple[int, ...]:
    if len(index) != len(shape):
        raise NotExplainable(
            f"index {index} has {len(index)} entries but the {what} has {len(shape)} dimensions (shape {list(shape)})",
            field="index",
        )
    out = []
    for axis, (i, size) in enumerate(zip(index, shape)):
        j = i + size if i < 0 else i
        if not 0 <= j < size:
            raise NotExplainable(
                f"index {index} is out of range at dimension {axis}: the {what} has size {size} there "
                f"(shape {list(shape)})",
                field="index",
            )
        out.append(j)
    return tuple(out)


def _weight(module: nn.Module) -> torch.Tensor:
    for name in ("weight", "weights"):
        w = getattr(module, name, None)
        if isinstance(w, torch.Tensor):
            return w
    raise NotExplainable(f"{type(module).__name__} has no weight to explain with")


def explain_linear(module: nn.Module, xs: list[torch.Tensor], index: tuple[int, ...]) -> dict[str, Any]:
    """y[*, o] = Σ_i x[*, i] · W[o, i] + b[o]   (W: (out_features, in_features))."""
    x = xs[0].detach().double().cpu()
    w = _weight(module).detach().double().cpu()
    b = getattr(module, "bias", None)
    lead, o = index[:-1], index[-1]
    row = x[lead] if lead else x
    terms = [
        {
            "input_index": [*lead, i],
            "input": _num(row[i]),
            "weight_index": [o, i],
            "weight": _num(w[o, i]),
            "product": _num(row[i] * w[o, i]),
            "padding": False,
        }
        for i in range(w.shape[1])
    ]
    total = float((row * w[o]).sum())
    bias = None
    if isinstance(b, torch.Tensor):
        bias = {"index": [o], "value": _num(b.detach().double().cpu()[o])}
        total += float(b.detach().double().cpu()[o])
    return {"operation": "sum", "terms": terms, "bias": bias, "manual": total}


def explain_bilinear(module: nn.Module, xs: list[torch.Tensor], index: tuple[int, ...]) -> dict[str, Any]:
    """y[*, k] = Σ_ij x1[*, i] · A[k, i, j] · x2[*, j] + b[k]."""
    x1 = xs[0].detach().double().cpu()
    x2 = xs[1].detach().double().cpu()
    a = module.weight.detach().double().cpu()
    lead, k = index[:-1], index[-1]
    r1 = x1[lead] if lead else x1
    r2 = x2[lead] if lead else x2
    terms = []
    for i in range(a.shape[1]):
        for j in range(a.shape[2]):
            terms.append(
                {
                    "input_index": [*lead, i],
                    "input": _num(r1[i]),
                    "weight_index": [k, i, j],
                    "weight": _num(a[k, i, j]),
                    "input2_index": [*lead, j],
                    "input2": _num(r2[j]),
                    "product": _num(r1[i] * a[k, i, j] * r2[j]),
                    "padding": False,
                }
            )
    total = float(r1 @ a[k] @ r2)
    bias = None
    if module.bias is not None:
        bias = {"index": [k], "value": _num(module.bias.detach().double().cpu()[k])}
        total += float(module.bias.detach().double().cpu()[k])
    return {"operation": "bilinear", "terms": terms, "bias": bias, "manual": total}


def _window(geo: Geometry, pos: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    return geo.src[pos], geo.at[pos]


def _window_json(geo: Geometry, pos: tuple[int, ...]) -> dict[str, Any]:
    src, at = _window(geo, pos)
    return {
        "position": list(pos),
        "at": at.tolist(),
        "src": [geo.unravel(int(s)) if s >= 0 else None for s in src.tolist()],
        "kernel_index": geo.kernel_index.tolist(),
        "frame": {"shape": list(geo.frame_shape), "input_origin": list(geo.origin), "input_step": list(geo.step)},
    }


def explain_conv(module: nn.Module, xs: list[torch.Tensor], index: tuple[int, ...], geo: Geometry) -> dict[str, Any]:
    """out[n, c_out, *o] = b[c_out] + Σ_{c_in in group} Σ_k w[c_out, c_in − g·C_in/G, *k] · in[n, c_in, *src(o, k)]."""
    n = geo.d
    x = xs[0].detach().double().cpu()
    w = module.weight.detach().double().cpu()
    batched = x.dim() == n + 2
    if not batched:
        x = x.unsqueeze(0)
        index = (0, *index)
    b_idx, c_out, pos = index[0], index[1], tuple(index[2:])
    src, _ = _window(geo, pos)
    in_channels = group_inputs(module, c_out)
    transposed = geo.kind == "transposed"
    groups = module.groups
    per_out = module.out_channels // groups
    terms = []
    total = 0.0
    for c_in in in_channels:
        for slot, flat in enumerate(src.tolist()):
            k = tuple(geo.kernel_index[slot].tolist())
            if transposed:
                w_index = (c_in, c_out % per_out, *k)
            else:
                w_index = (c_out, c_in - in_channels[0], *k)
            wv = float(w[w_index])
            if flat < 0:
                at = geo.at[pos][slot].tolist()
                terms.append(
                    {
                        "input_index": None,
                        "input": 0.0,
                        "weight_index": list(w_index),
                        "weight": _num(wv),
                        "product": 0.0,
                        "padding": True,
                        "at": at,
                        # a zero the stride inserts between a transposed convolution's inputs, not padding
                        **({"inserted": True} if transposed and not _in_padding(geo, at) else {}),
                    }
                )
                continue
            coord = geo.unravel(flat)
            i_index = (b_idx, c_in, *coord)
            xv = float(x[i_index])
            total += xv * wv
            at = geo.at[pos][slot].tolist()
            terms.append(
                {
                    "input_index": list(i_index if batched else i_index[1:]),
                    "input": _num(xv),
                    "weight_index": list(w_index),
                    "weight": _num(wv),
                    "product": _num(xv * wv),
                    "padding": False,
                    "at": at,
                    # reflect/replicate/circular: a padding cell holding a copy of this input element
                    **({"pad_copy": True} if _in_padding(geo, at) else {}),
                }
            )
    bias = None
    if module.bias is not None:
        bv = float(module.bias.detach().double().cpu()[c_out])
        bias = {"index": [c_out], "value": _num(bv)}
        total += bv
    reads = pad_reads(module, geo.kind)
    return {
        "operation": "sum",
        "terms": terms,
        "bias": bias,
        "manual": total,
        "input_channels": in_channels,
        "pad_value": reads,
        "padding_note": _conv_pad_note(terms, reads, getattr(module, "padding_mode", "zeros")),
    }


def _in_padding(geo: Geometry, at: list[int]) -> bool:
    """Whether frame cell ``at`` lies in the padding around the input (not on the input itself)."""
    return any(not 0 <= at[j] - geo.origin[j] <= (geo.input_spatial[j] - 1) * geo.step[j] for j in range(geo.d))


def _conv_pad_note(terms: list[dict[str, Any]], reads: str, mode: str) -> str | None:
    n = len(terms)
    if reads == "copy":
        k = sum(1 for t in terms if t.get("pad_copy"))
        return f"{k} of {n} positions fall on {mode} padding and read copies of input elements." if k else None
    inserted = sum(1 for t in terms if t.get("inserted"))
    k = sum(1 for t in terms if t["padding"]) - inserted
    parts = []
    if inserted:
        parts.append(f"{inserted} of {n} positions fall on zeros the stride inserts between the inputs")
    if k:
        parts.append(f"{k} of {n} {'on' if inserted else 'positions fall on'} zero padding")
    if not parts:
        return None
    return f"{' and '.join(parts)}; {'each adds' if inserted + k == 1 else 'they add'} 0."


def explain_pool(module: nn.Module, xs: list[torch.Tensor], index: tuple[int, ...], geo: Geometry) -> dict[str, Any]:
    n = geo.d
    x = xs[0].detach().double().cpu()
    batched = x.dim() == n + 2
    if not batched:
        x = x.unsqueeze(0)
        index = (0, *index)
    b_idx, c, pos = index[0], index[1], tuple(index[2:])
    src, _ = _window(geo, pos)
    name = type(module).__name__
    reads = pad_reads(module, "pool")
    terms = []
    values = []
    for slot, flat in enumerate(src.tolist()):
        at = geo.at[pos][slot].tolist()
        if flat < 0:
            terms.append({"input_index": None, "input": 0.0, "padding": True, "outside": flat == -2, "at": at})
            if flat == -2 or reads == "excluded":
                # past the padded input (ceil_mode), or count_include_pad=False: not part of the mean
                terms[-1]["excluded"] = True
            continue
        coord = geo.unravel(flat)
        i_index = (b_idx, c, *coord)
        v = float(x[i_index])
        values.append(v)
        terms.append(
            {"input_index": list(i_index if batched else i_index[1:]), "input": _num(v), "padding": False, "at": at}
        )
    result: dict[str, Any] = {"terms": terms, "bias": None, "pad_value": reads}
    n_pad = sum(1 for t in terms if t["padding"] and not t.get("outside"))
    n_out = sum(1 for t in terms if t.get("outside"))
    notes = [_pool_pad_note(name, reads, n_pad, len(terms), module)] if n_pad else []
    if n_out:
        # ceil_mode: the last window may hang past the (padded) input; torch reads nothing there
        notes.append(
            f"{n_out} of {len(terms)} positions lie outside the input (ceil_mode): torch leaves them out"
            + (" of the max." if name.startswith("MaxPool") else " of the sum and the divisor.")
        )
    result["padding_note"] = " ".join(notes) or None
    if name.startswith("MaxPool"):
        result["operation"] = "max"
        for t in terms:
            if t["padding"]:
                t["input"] = "-inf"  # max pooling pads with -inf, so padding never wins
        result["manual"] = max(values) if values else float("-inf")
        # which element torch itself picked (ties: torch's choice, not ours)
        winner_flat = _torch_argmax(module, xs[0], index, batched, n)
        coord = None
        result["winner"] = None
        for slot, t in enumerate(terms):
            if t["input_index"] is not None and geo.unravel(int(src[slot])) == winner_flat:
                result["winner"] = slot
                coord = winner_flat
                break
        result["winner_index"] = coord
    elif name.startswith("AvgPool"):
        result["operation"] = "avg"
        override = getattr(module, "divisor_override", None)
        if override:
            divisor = int(override)
        elif getattr(module, "count_include_pad", True):
            divisor = len(values) + n_pad
        else:
            divisor = len(values)
        result["divisor"] = divisor
        result["manual"] = sum(values) / divisor
    elif name.startswith("LPPool"):
        p = float(module.norm_type)
        result["operation"] = "lp"
        # a ceil_mode window cut short averages fewer cells
        count = len(values) + n_pad
        result["divisor"] = count
        result["norm_type"] = p
        dtype = xs[0].dtype if xs[0].is_floating_point() else torch.get_default_dtype()
        result["manual"] = _lp_manual(values, p, count, math.prod(geo.kernel), dtype)
        result["manual_dtype"] = tensors.dtype_name(dtype)
    else:
        raise NotExplainable(f"{name} has no manual computation")
    return result


def _lp_manual(values: list[float], p: float, count: int, k: int, dtype: torch.dtype) -> float:
    """One LP-pooling window step by step as torch.nn.functional.lp_pool{1,2,3}d computes it, in the
    run's dtype: avg_pool(x^p) (padding adds 0), then sign(s)·relu(|s|)·K, then ^(1/p).

    The dtype matters at the edges: in float32 a subnormal x^p underflows to ±0 (a 0, not a NaN, after
    the 1/p power) where float64 keeps a tiny negative sum whose fractional root is NaN."""
    powered = torch.tensor(values, dtype=dtype).pow(p)
    # avg_pool's CPU kernel adds the window's cells one by one, in order, in the op-math type (float32
    # for half types), then divides: the same order keeps cancellation (x^p of ±1e15) torch's own
    acc = _ACC.get(dtype, dtype)
    total = torch.zeros((), dtype=acc)
    for v in powered.to(acc):
        total = total + v
    s = (total / count).to(dtype)
    return float((torch.sign(s) * torch.relu(torch.abs(s))).mul(k).pow(1.0 / p))


#: the type torch's CPU kernels accumulate a reduced-precision dtype in (at::opmath_type)
_ACC = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


def _pool_pad_note(name: str, reads: str, k: int, n: int, module: nn.Module) -> str:
    if reads == "-inf":
        return f"{k} of {n} positions fall on padding, which max pooling reads as −∞: padding never wins."
    if name.startswith("AvgPool"):
        if getattr(module, "divisor_override", None):
            return f"{k} of {n} positions fall on padding: they add 0; the divisor is divisor_override."
        if reads == "excluded":
            return (
                f"{k} of {n} positions fall on padding: count_include_pad=False leaves them out of the sum "
                "and the divisor."
            )
        return f"{k} of {n} positions fall on padding: they add 0 and count in the divisor (count_include_pad=True)."
    return f"{k} of {n} positions fall on padding and add 0."


def _torch_argmax(module: nn.Module, x: torch.Tensor, index: tuple[int, ...], batched: bool, n: int) -> list[int]:
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n]
    xx = x.detach().cpu().double()
    if not batched:
        xx = xx.unsqueeze(0)
    _, idx = fn(
        xx,
        module.kernel_size,
        module.stride,
        module.padding,
        module.dilation,
        ceil_mode=module.ceil_mode,
        return_indices=True,
    )
    flat = int(idx[index])
    return [int(v) for v in torch.unravel_index(torch.tensor(flat), tuple(xx.shape[-n:]))]


def explain_module(
    spec: LayerSpec, module: nn.Module, xs: list[torch.Tensor], out: torch.Tensor, index: list[int]
) -> dict[str, Any]:
    """Explain ``out[index]`` of ``module`` applied to ``xs``."""
    if spec.family == "opaque":
        raise NotExplainable(
            f"{spec.type} is a layer the server does not run ({NOT_COMPUTED}): it has no numbers to explain",
            field="layer.type",
        )
    if spec.explain is None:
        raise NotExplainable(
            f"{spec.type} has no manual computation yet; /api/explain covers Linear, Bilinear, convolutions, "
            f"transposed convolutions and max/avg/LP pooling",
            field="layer.type",
        )
    idx = normalise_index(index, tuple(out.shape))
    value = float(out.detach().double().cpu()[idx])
    geo = None
    if spec.explain == "linear":
        result = explain_linear(module, xs, idx)
    elif spec.explain == "bilinear":
        result = explain_bilinear(module, xs, idx)
    else:
        n = spec.spatial_rank
        geo = geometry_for(module, spec.explain, tuple(xs[0].shape), tuple(out.shape), n)
        if spec.explain == "pool":
            result = explain_pool(module, xs, idx, geo)
        else:
            result = explain_conv(module, xs, idx, geo)
    manual = float(result.pop("manual"))
    rtol, atol = _TOL.get(out.dtype, (1e-4, 1e-5))
    scale = _magnitude(result["terms"])
    match = (
        (math.isnan(value) and math.isnan(manual))
        or (math.isfinite(value) and math.isfinite(manual) and abs(value - manual) <= atol * scale + rtol * abs(value))
        or (value == manual)
    )
    response = {
        "type": spec.type,
        "index": list(idx),
        "output_shape": list(out.shape),
        "value": _num(value),
        "manual": _num(manual),
        # torch computes in the run's dtype; the hand computation always in float64
        "dtype": tensors.dtype_name(out.dtype),
        "manual_dtype": "float64",
        "match": bool(match),
        "abs_error": _num(abs(value - manual)) if math.isfinite(value) and math.isfinite(manual) else None,
        **result,
    }
    if geo is not None:
        response["window"] = _window_json(geo, tuple(idx[-geo.d :]))
    else:
        response["window"] = None
    response["text"] = _text(response)
    return response


def _magnitude(terms: list[dict[str, Any]]) -> float:
    """Size of the sum's terms: float error grows with it, not with the (possibly tiny) result."""
    total = 0.0
    for t in terms:
        v = t.get("product", t.get("input"))
        if isinstance(v, (int, float)):
            total += abs(v)
    return max(1.0, total)


def _text(r: dict[str, Any]) -> str:
    """The headline: the operation and torch's own value, saying it is torch's and in which dtype."""
    return f"{_headline(r)} (torch, {r['dtype']})"


def _headline(r: dict[str, Any]) -> str:
    op = r["operation"]
    value = _fmt(float(r["value"])) if isinstance(r["value"], (int, float)) else r["value"]
    if op == "max":
        return f"max over {len(r['terms'])} window cells = {value}"
    if op == "avg":
        return f"Σ xᵢ / {r['divisor']} = {value}"
    if op == "lp":
        return f"(Σ xᵢ^{_fmt(r['norm_type'])})^(1/{_fmt(r['norm_type'])}) = {value}"
    if op == "bilinear":
        return f"Σᵢⱼ x1ᵢ·Aₖᵢⱼ·x2ⱼ{' + bₖ' if r['bias'] else ''} = {value}"
    return f"Σ wᵢ·xᵢ{' + b' if r['bias'] else ''} = {value}"
