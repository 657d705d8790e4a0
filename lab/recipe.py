"""Recipe hashes: what names a cached image or asset directory, for both back ends.

A recipe is a dict of everything that decides what a cached tree contains;
its digest (key order does not matter) names the cache directory, so a
changed recipe builds anew and a stale tree is never reused.
"""
from __future__ import annotations

import hashlib
import json


def digest(recipe: dict, length: int) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``recipe`` as canonical JSON."""
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]
