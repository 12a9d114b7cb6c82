"""``layer-explorer open FILE.py:Name --input 1,3,224,224`` (its arguments: app/cli.py): your model, in the browser.

The file is imported here, in your own Python process, on your machine (the server never imports or
runs code it is sent). ``Name`` is an ``nn.Module`` subclass built with no arguments, a module
instance, or a function that returns one when called with no arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import nn

from layer_explorer.explorer import NO_BROWSER_ENV, explore

__all__ = ["OpenError", "load_module", "parse_shape", "run"]


class OpenError(Exception):
    """A model file, name or input that cannot be used, in words for the command line."""


def parse_shape(text: str) -> list[int]:
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = [int(p) for p in parts]
    except ValueError:
        raise OpenError(
            f"--input {text!r}: give the shape as whole numbers separated by commas, e.g. 1,3,224,224"
        ) from None
    if not shape or any(n < 0 for n in shape):
        raise OpenError(f"--input {text!r}: a shape is one or more sizes of 0 or more, e.g. 1,3,224,224")
    return shape


def _split_target(target: str) -> tuple[Path, str]:
    file, sep, name = target.rpartition(":")
    if not sep or not file or not name:
        raise OpenError(f"{target!r}: write the file and the name in it as FILE.py:Name, e.g. model.py:Net")
    path = Path(file).expanduser()
    if not path.is_file():
        raise OpenError(f"{file}: no such file")
    if path.suffix != ".py":
        raise OpenError(f"{file}: not a Python file (.py)")
    if not name.isidentifier():
        raise OpenError(f"{name!r} is not a Python name")
    return path.resolve(), name


def _import_file(path: Path) -> Any:
    # the file's folder first on sys.path, so that it imports its neighbours as when run with python
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"_layer_explorer_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise OpenError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        raise OpenError(f"{path} called exit({exc.code}) while it was imported") from None
    except Exception as exc:  # the user's code: anything it raises is reported as theirs
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise OpenError(
            f"{path} raised {type(exc).__name__} while it was imported (line {where.lineno}): {exc}"
        ) from exc
    return module


def load_module(target: str) -> Any:
    """``FILE.py:Name`` -> the ``nn.Module`` it names (a class built with no arguments, an instance, a factory)."""
    path, name = _split_target(target)
    namespace = _import_file(path)
    if not hasattr(namespace, name):
        found = sorted(
            n
            for n, v in vars(namespace).items()
            if not n.startswith("_")
            and (
                isinstance(v, nn.Module)
                or (inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == namespace.__name__)
            )
        )
        hint = f"; modules there: {', '.join(found)}" if found else ""
        raise OpenError(f"{path.name} has no {name!r}{hint}")
    obj = getattr(namespace, name)
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise OpenError(f"{name} in {path.name} is a {type(obj).__name__}, not an nn.Module, a class or a function")
    what = "class" if inspect.isclass(obj) else "function"
    if inspect.isclass(obj) and not issubclass(obj, nn.Module):
        raise OpenError(f"{name} in {path.name} is a class but not an nn.Module")
    try:
        inspect.signature(obj).bind()
    except TypeError:
        raise OpenError(
            f"{name}() needs arguments; give a {what} that builds the model with none (e.g. def build(): return {name}(...))"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): try the call
    try:
        built = obj()
    except Exception as exc:  # the user's code
        raise OpenError(f"{name}() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(built, nn.Module):
        raise OpenError(f"{name}() returned a {type(built).__name__}, not an nn.Module")
    return built


def run(args: argparse.Namespace, *, block: bool = True) -> Any:
    """Build the module and the example inputs, then :func:`layer_explorer.explorer.explore` it in the browser."""
    if not args.input:
        raise OpenError("give the example input's shape with --input, e.g. --input 1,3,224,224")
    shapes = [parse_shape(s) for s in args.input]
    module = load_module(args.target)
    if args.no_browser:
        os.environ[NO_BROWSER_ENV] = "1"
    inputs = [torch.randn(*shape) for shape in shapes]
    try:
        with torch.no_grad():
            module(*inputs)
    except Exception as exc:  # the user's forward, told in their words before anything is drawn
        shown = ", ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes)
        raise OpenError(f"{type(module).__name__} cannot run on input {shown}: {type(exc).__name__}: {exc}") from exc
    return explore(module, *inputs, weights=args.weights, server=args.server, block=block)
