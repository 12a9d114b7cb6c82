"""Gzip for the JSON answers, in the worker that encoded them (:func:`gzip_json`).

The one web process compressed every answer on its own core: Starlette's GZipMiddleware at level 6
took 65 ms of a 1.4 MB answer's 88 ms. Compressed where it was encoded, the workers compress in
parallel, off the event loop, and the pipe between the processes carries a third of the bytes; the web
process sends them as they are, with ``Content-Encoding: gzip`` (app.api.deps.in_worker).
"""

from __future__ import annotations

from isal import igzip

from app.core.body import JSONBytes

#: answers smaller than this go out as they are (GZipMiddleware's minimum_size in app.main: a few hundred
#: bytes gain little, and a gzip header and trailer cost 18)
GZIP_MINIMUM = 500
#: ISA-L's level 2 (its default). Measured on the answers of issue 18's networks (1.2-3.3 MB): 3-5 ms and
#: 26-43 % of the size, against zlib's level 6 (Starlette's default here until then) at 45-90 ms and
#: 24-40 %, and zlib's level 1 at 8-15 ms and 26-47 %
GZIP_LEVEL = 2


class GzippedJSON(JSONBytes):
    """A JSON answer already gzip-compressed (sent with ``Content-Encoding: gzip`` as it is)."""


def gzip_json(data: bytes) -> JSONBytes:
    """JSON ``data`` gzip-compressed where it is worth it (:data:`GZIP_MINIMUM`), else as it is (a
    :class:`JSONBytes`: ``data`` itself where it is one already).

    ISA-L (``isal``) writes gzip streams that any gzip reader decodes, 3-4x faster than zlib's fastest
    level and smaller. ``mtime=0``: the same answer gives the same bytes. ``data`` may be plain bytes
    (app.core.body.dumps): a large answer is then never copied into a :class:`JSONBytes` it does not need.
    """
    if len(data) < GZIP_MINIMUM:
        return data if isinstance(data, JSONBytes) else JSONBytes(data)
    return GzippedJSON(igzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))
