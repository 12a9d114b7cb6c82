"""Meta-device shape passes without importing ``torch._dynamo`` (and with it sympy and torch._inductor).

Why: many of torch's Python meta kernels (every elementwise reference such as ``add`` or ``mean``, and
through them batch norm's decomposition) are wrapped in ``torch._disable_dynamo``. That wrapper imports
``torch._dynamo`` on its first call, only to wrap the kernel in ``torch._dynamo.disable``, which keeps
torch.compile from tracing into it. The import costs about 90 MiB per process and ~2 s of CPU (far more
on a loaded machine): the forkserver preloaded it so that a worker's first ResNet request would not
pay it, and every worker then carried it. No request of this server compiles anything.

:func:`install` gives each such wrapped kernel a stand-in for the disabled function that calls the
kernel directly while ``torch._dynamo`` was never imported (nothing can be compiling then, so
disabling it changes nothing), and, once anything has imported it, builds torch's own
``torch._dynamo.disable`` wrapper and uses that from then on. The kernels run unchanged: every number
stays PyTorch's own.

The wrapped kernels are found among the live objects by the code of the wrapper
(``torch._compile._disable_dynamo``'s ``inner``) and the name of its closure variable ``fn``, the
attribute it caches the disabled function on (``__dynamo_disable``). If a torch release changes
that, :func:`install` finds nothing and torch imports ``torch._dynamo`` on first use, as before.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch._compile

#: the attribute ``torch._compile._disable_dynamo`` caches a kernel's disabled version on
_CACHE = "__dynamo_disable"


class _UntilDynamo:
    """The kernel itself while ``torch._dynamo`` is not imported; torch's disabled kernel after."""

    __slots__ = ("fn", "recursive")

    def __init__(self, fn: Callable[..., Any], recursive: bool) -> None:
        self.fn, self.recursive = fn, recursive

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is None:
            return self.fn(*args, **kwargs)
        # something imported dynamo: from now on what torch's wrapper would have made, cached the same way
        disabled = dynamo.disable(self.fn, self.recursive, wrapping=False)
        setattr(self.fn, _CACHE, disabled)
        return disabled(*args, **kwargs)


def _wrapper_code() -> Any:
    """The code object of ``_disable_dynamo``'s wrapper, read from a wrapper made here."""
    return torch._compile._disable_dynamo(lambda: None).__code__


def install() -> int:
    """Give every wrapped kernel alive now its stand-in; how many were found (0 when torch changed).

    Called once in the forkserver, after the imports and before any fork (app.core.preloaded), so the
    workers inherit it; kernels wrapped later (none at the time of writing) import dynamo as before.
    """
    global _installed
    if _installed or "torch._dynamo" in sys.modules:
        return 0  # done in this process (or the forkserver it came from), or dynamo is paid for already
    _installed = True
    code = _wrapper_code()
    if "fn" not in code.co_freevars:
        return 0
    fn_at = code.co_freevars.index("fn")
    recursive_at = code.co_freevars.index("recursive") if "recursive" in code.co_freevars else None
    found = 0
    for obj in gc.get_objects():
        if type(obj) is not _FUNCTION or obj.__code__ is not code or obj.__closure__ is None:
            continue
        fn = obj.__closure__[fn_at].cell_contents
        if getattr(fn, _CACHE, None) is not None:
            continue
        recursive = bool(obj.__closure__[recursive_at].cell_contents) if recursive_at is not None else True
        setattr(fn, _CACHE, _UntilDynamo(fn, recursive))
        _kernels.append(fn)
        found += 1
    return found


_FUNCTION = type(install)
#: set once install() has run in this process; a forked worker inherits it, and does not scan again (a
#: scan takes a reference to every object, writing to pages the worker shares with the forkserver)
_installed = False
#: the kernels given a stand-in in this process
_kernels: list[Callable[..., Any]] = []


def _standins() -> list[Callable[..., Any]]:
    """The kernels :func:`install` gave a stand-in (whether it has handed over to torch's since)."""
    return list(_kernels)
