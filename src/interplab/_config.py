"""The one place interplab reads its environment.

INTERPLAB_CACHE   where trained organisms, converted weights and other derived files are
                  cached (default: ~/.cache/interplab)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of interplab's on-disk cache (created on first use by whoever writes there)."""
    root = os.environ.get("INTERPLAB_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "interplab"
