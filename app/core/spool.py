"""Large results from a worker to the web process through a file in shared memory, not through a pipe.

A ``.npy`` of 16 M float32 elements is 64 MB. Sent as the task's return value it was copied into a
bytes object, pickled, pushed through pebble's pipe, unpickled and copied into the response: at least
three copies and two processes' worth of memory. Spooled, the worker writes the array once
(``np.save`` to a file writes straight from the array's buffer) into a private directory on tmpfs
(``/dev/shm``), answers with the file's name, and the web process opens it, unlinks it at once and
streams it to the client. The bytes are those of ``np.save`` because they *are* ``np.save``'s.

Clean-up on every path:

- answered: the web process unlinks the file the moment it opens it (in the pool's done callback, before
  anything can abandon it); its memory is freed when the last descriptor closes, which a client that
  disconnects mid-stream, or a response that is never sent, does too (by garbage collection at worst);
- failed, timed out, cancelled or killed while writing: the file is named by the task's slot, and the
  pool removes whatever that slot left once its worker is done with it (:meth:`Spool.discard`);
- server stopped: its directories are removed (:meth:`Spool.close`), and a server that died without
  stopping has its directories removed by the next one that starts (:func:`sweep`).

tmpfs is memory: where ``/dev/shm`` has too little room (Docker gives containers 64 MB by default), the
file goes to the temporary directory instead, which is still one write and one read, through the page cache.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import mmap
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import numpy as np

PREFIX = "layer-explorer-spool-"
#: tmpfs first, then the temporary directory
ROOTS = ("/dev/shm",)
#: room left free on a file system after a spooled file (other users of /dev/shm need it too)
HEADROOM = 16 * 1024**2


@dataclass(frozen=True)
class Spooled:
    """A result written to the spool: the file and its size in bytes."""

    path: str
    size: int


def _free_bytes(directory: str) -> int:
    try:
        st = os.statvfs(directory)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _owner(name: str) -> int | None:
    """The PID in a spool directory's name (``layer-explorer-spool-<pid>-<random>``)."""
    pid, _, _ = name.removeprefix(PREFIX).partition("-")
    return int(pid) if pid.isdigit() else None


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie no longer counts: its memory is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def candidate_roots() -> list[str]:
    """Where spool directories may go: tmpfs where there is one, then the temporary directory."""
    roots = [r for r in ROOTS if os.path.isdir(r) and os.access(r, os.W_OK | os.X_OK)]
    tmp = tempfile.gettempdir()
    if tmp not in roots:
        roots.append(tmp)
    return roots


def sweep(roots: list[str] | None = None) -> list[str]:
    """Remove spool directories whose server process is gone (it was killed and never cleaned up)."""
    removed = []
    for root in roots or candidate_roots():
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                pid = _owner(entry.name) if entry.name.startswith(PREFIX) else None
                if pid is not None and pid != os.getpid() and not alive(pid) and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.path)
    return removed


@dataclass(frozen=True)
class Spool:
    """The web process's spool directories (plain data: the workers get a copy at start)."""

    dirs: tuple[str, ...]

    @classmethod
    def create(cls, roots: list[str] | None = None) -> Spool:
        roots = roots or candidate_roots()
        sweep(roots)
        dirs = []
        for root in roots:
            with contextlib.suppress(OSError):
                dirs.append(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        return cls(tuple(dirs))

    def _name(self, slot: int | None) -> str:
        # one task per slot at a time, so a slot's name is free again once that task is over
        return f"slot-{slot}.npy" if slot is not None else f"pid-{os.getpid()}.npy"

    # -- in the worker ------------------------------------------------------------------------

    def write_npy(self, array: np.ndarray, slot: int | None) -> Spooled:
        """``np.save`` of ``array`` into a spool file: the first directory with room for it."""
        need = array.nbytes + 4096  # the header is at most a few hundred bytes
        last: OSError | None = None
        for directory in self.dirs:
            if _free_bytes(directory) < need + HEADROOM:
                continue
            path = os.path.join(directory, self._name(slot))
            try:
                with open(path, "wb") as fh:
                    # the worker has NumPy loaded already; the web process, which only reads spool files,
                    # never imports it (about 6 MiB of an idle server)
                    importlib.import_module("numpy").save(fh, array, allow_pickle=False)
            except OSError as exc:  # filled up meanwhile (ENOSPC): the next directory
                with contextlib.suppress(OSError):
                    os.unlink(path)
                last = exc
                continue
            return Spooled(path, os.path.getsize(path))
        raise last or OSError(errno.ENOSPC, f"no room for a {need}-byte file in {', '.join(self.dirs)}")

    # -- in the web process -------------------------------------------------------------------

    def claim(self, spooled: Spooled) -> BinaryIO:
        """Open a worker's file and unlink it: from now on the open file is all that keeps it."""
        path = os.path.realpath(spooled.path)
        if os.path.dirname(path) not in {os.path.realpath(d) for d in self.dirs}:
            raise ValueError(f"not a spool file: {spooled.path}")  # a worker only names files it wrote here
        fh = open(path, "rb")  # noqa: SIM115 - the caller streams it and closes it
        with contextlib.suppress(OSError):
            os.unlink(path)
        return fh

    def discard(self, slot: int) -> None:
        """Remove what a slot's task left behind (it failed, timed out or was killed while writing)."""
        for directory in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, self._name(slot)))

    def close(self) -> None:
        for directory in self.dirs:
            shutil.rmtree(directory, ignore_errors=True)

    def files(self) -> list[str]:
        """Every file in the spool now (for tests: empty between requests)."""
        out = []
        for directory in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                out += [os.path.join(directory, name) for name in os.listdir(directory)]
        return out


#: bytes per chunk when streaming a spooled file
CHUNK = 1 << 20


async def stream(fh: BinaryIO, size: int = CHUNK) -> AsyncIterator[memoryview]:
    """A claimed file's bytes, chunk by chunk, as views of the file mapped into memory.

    Nothing is copied here and no chunk goes through a thread: the file is on tmpfs, i.e. in memory
    already (or, in the temporary directory, in the page cache, having just been written), so the
    server's own write of each chunk to the connection is the one copy. (Reading it in 1 MiB chunks,
    each ``read`` in the thread pool, measured 64 thread hops and a 64 MiB copy for 16 M elements.)
    The mapping holds the file, unlinked already, until the last chunk sent is dropped.
    """
    with fh:
        length = os.fstat(fh.fileno()).st_size
        view = memoryview(mmap.mmap(fh.fileno(), length, access=mmap.ACCESS_READ)) if length else memoryview(b"")
    for start in range(0, length, size):
        yield view[start : start + size]
