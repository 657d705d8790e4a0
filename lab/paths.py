"""Where the lab keeps things, for both back ends (nspawn nodes and the qemu VM).

- ``RUN_DIR`` (``/run/inferfleet-lab``): per-lab state, keys, inventories; gone at reboot.
- ``DATA_DIR`` (``/var/lib/inferfleet-lab``): nspawn node overlays and data disks.
- ``CACHE_DIR`` (``/var/cache/inferfleet-lab``): images and assets, keyed by their recipe hash.

Each can be moved with an environment variable (``INFERFLEET_LAB_RUN``,
``INFERFLEET_LAB_DATA``, ``INFERFLEET_LAB_CACHE``), read here once.
"""
from __future__ import annotations

import os
from pathlib import Path

RUN_DIR = Path(os.environ.get("INFERFLEET_LAB_RUN", "/run/inferfleet-lab"))
DATA_DIR = Path(os.environ.get("INFERFLEET_LAB_DATA", "/var/lib/inferfleet-lab"))
CACHE_DIR = Path(os.environ.get("INFERFLEET_LAB_CACHE", "/var/cache/inferfleet-lab"))
