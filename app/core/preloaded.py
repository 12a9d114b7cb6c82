"""Imported last by the workers' forkserver (app.core.workers.PRELOAD): freezes what the imports made.

Every worker is forked from the forkserver and shares its memory until a page is written. The garbage
collector writes to every object it visits (its header), so a worker's first full collection copied
every page of torch's, sympy's and the catalog's Python objects: about 90 MB per worker. Objects frozen
here, before any fork, are never visited again, and their pages stay shared. (Python's documentation
recommends this for pre-fork servers: ``gc.freeze()`` in the parent just before forking.)
"""

from __future__ import annotations

import gc

from app.core import nodynamo

# before the freeze and the forks: the stand-ins are set once here and shared by every worker
nodynamo.install()
gc.collect()
gc.freeze()
