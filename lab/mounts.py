"""Mount points on this machine, for both back ends (tearing down node roots, image build trees)."""
from __future__ import annotations

import os
from pathlib import Path


def _mount_points(mountinfo: str):
    with open(mountinfo, encoding="utf-8") as f:
        for line in f:
            yield line.split()[4].replace("\\040", " ")


def is_mountpoint(path: str | Path, mountinfo: str = "/proc/self/mountinfo") -> bool:
    path = os.path.realpath(path)
    return any(mp == path for mp in _mount_points(mountinfo))


def mounts_under(prefix: str | Path, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points at or below ``prefix``, deepest first (unmount order)."""
    prefix = os.path.realpath(prefix)
    found = {mp for mp in _mount_points(mountinfo) if mp == prefix or mp.startswith(prefix + "/")}
    return sorted(found, key=lambda p: p.count("/"), reverse=True)
