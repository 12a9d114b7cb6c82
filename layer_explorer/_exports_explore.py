"""What ``layer_explorer/__init__.py`` re-exports from the explore side (the package's __init__ imports these)."""

from layer_explorer.client import ApiError, AsyncClient, Client
from layer_explorer.explorer import explore

__all__ = ["ApiError", "AsyncClient", "Client", "explore"]
