"""``python -m app.healthcheck``: exit 0 when the server in this container is ready (``/readyz``).

Ready, not just up: compose's ``depends_on: condition: service_healthy`` then waits until requests
are served by a warm worker, not merely until the port opens (``/healthz``).

The container's HEALTHCHECK runs this: the slim image has no curl, and it imports only the
standard library, so a probe every few seconds costs milliseconds, not a torch import.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(port: int, timeout_s: float = 4.0) -> bool:
    # "localhost": a Host the default Host allowlist accepts, whatever address the server binds
    request = urllib.request.Request(f"http://127.0.0.1:{port}/readyz", headers={"Host": f"localhost:{port}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # a fixed loopback URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> None:
    port = int(os.environ.get("LAYER_EXPLORER_PORT") or 8000)
    sys.exit(0 if check(port) else 1)


if __name__ == "__main__":
    main()
