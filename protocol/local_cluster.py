"""Where a local `shoplist-server cluster` publishes its ready line, so clients on the same machine find
it with no configuration (the quick start). Paths only; the callers read and write the file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

CLUSTER_FILE_ENV = "SHOPLIST_CLUSTER_FILE"


def local_cluster_file(environment: Mapping[str, str]) -> Path:
    """Return the file for this user: $SHOPLIST_CLUSTER_FILE, else `cluster.json` in the user's runtime
    directory (pass `os.environ`)."""
    if environment.get(CLUSTER_FILE_ENV):
        return Path(environment[CLUSTER_FILE_ENV])
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        # Without $XDG_RUNTIME_DIR (a root shell, a container) platformdirs warns on every call and falls
        # back to a per-user directory under /tmp, which is what we want anyway.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        runtime = platformdirs.user_runtime_path("shoplist", appauthor=False, ensure_exists=False)
    return runtime / "cluster.json"
