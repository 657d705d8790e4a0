"""Make ``ansible_collections.inferfleet.gpu`` importable for the tests.

The Makefile links the repository at ``.build/ansible_collections/inferfleet/gpu``;
the link is created here too so ``pytest`` works on its own. (This folder is
on ``sys.path`` under pytest, so tests import ``helpers`` and ``topology_trees``.)
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = ROOT / ".build" / "ansible_collections" / "inferfleet" / "gpu"
if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT, LINK)
if str(ROOT / ".build") not in sys.path:
    sys.path.insert(0, str(ROOT / ".build"))

FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    """Debian's haproxy unpacked for this module's tests (``helpers.haproxy_binary``), or a skip."""
    from helpers import haproxy_binary
    found = haproxy_binary(tmp_path_factory.mktemp("haproxy"))
    if found is None:
        pytest.skip("no haproxy .deb here (no lab asset, no apt-get download)")
    return found
