"""The node root filesystem: a Debian 12 tree built once with debootstrap.

The tree is cached under ``/var/cache/inferfleet-lab/rootfs-<hash>`` where
``<hash>`` is a digest of the recipe (suite, mirror, packages, the post-build
steps).  Change the recipe and the next ``up`` builds a new tree; the old one
stays until ``python -m lab image --prune`` removes it.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lab import apt, paths
from lab.recipe import digest as recipe_digest

CACHE_DIR = paths.CACHE_DIR

PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv",
    "python3-packaging", "python3-apt", "xfsprogs", "iproute2", "kmod", "procps",
    "udev", "ca-certificates", "sudo", "less",
)

# Units that only slow a container's boot or touch things a container must not.
MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
    "fstrim.timer", "man-db.timer", "dpkg-db-backup.timer",
    "systemd-networkd-wait-online.service", "console-getty.service",
    "getty@tty1.service", "systemd-timesyncd.service",
)

# Bump when the post-build steps below change in a way that alters the tree.
POST_VERSION = 2


def recipe(mirror: str | None = None) -> dict:
    """Everything that decides what the tree contains."""
    return {
        "suite": apt.SUITE,
        "variant": "minbase",
        "arch": "amd64",
        "mirror": mirror or apt.debian_mirror(),
        "packages": sorted(PACKAGES),
        "masked": sorted(MASKED_UNITS),
        "post_version": POST_VERSION,
    }


def recipe_hash(rec: dict) -> str:
    """A stable short digest of a recipe (order of keys and packages does not matter)."""
    norm = dict(rec)
    if "packages" in norm:
        norm["packages"] = sorted(set(norm["packages"]))
    if "masked" in norm:
        norm["masked"] = sorted(set(norm["masked"]))
    return recipe_digest(norm, 16)


def rootfs_path(rec: dict, cache_dir: Path = CACHE_DIR) -> Path:
    return cache_dir / f"rootfs-{recipe_hash(rec)}"


def _post_build(tree: Path, rec: dict) -> None:
    """Make the tree boot fast as an nspawn container and accept root by key."""
    etc = tree / "etc"
    for unit in rec["masked"]:
        link = etc / "systemd" / "system" / unit
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    # Each node gets a fresh machine-id at boot (empty file = generate one).
    (etc / "machine-id").write_text("")
    dbus_id = tree / "var" / "lib" / "dbus" / "machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    (etc / "hostname").write_text("lab\n")
    # nspawn configures the network namespace from the host side; nothing to do inside.
    (etc / "ssh" / "sshd_config.d").mkdir(parents=True, exist_ok=True)
    (etc / "ssh" / "sshd_config.d" / "inferlab.conf").write_text(
        "# inferfleet lab: root logs in by key only; no DNS lookups slowing logins\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "UseDNS no\n"
    )
    root_ssh = tree / "root" / ".ssh"
    root_ssh.mkdir(mode=0o700, exist_ok=True)
    (tree / "etc" / "inferlab-image").write_text(json.dumps(rec, sort_keys=True) + "\n")


def build(rec: dict, cache_dir: Path = CACHE_DIR, log=sys.stderr) -> Path:
    """Return the cached tree for ``rec``, building it first if needed."""
    final = rootfs_path(rec, cache_dir)
    if (final / "etc" / "inferlab-image").is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "etc" / "inferlab-image").is_file():
            return final
        tmp = cache_dir / f".tmp-{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        for stale in cache_dir.glob(f".tmp-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        start = time.monotonic()
        print(f"lab: building Debian {rec['suite']} root {final.name} with debootstrap "
              f"from {rec['mirror']} (once; cached)", file=log, flush=True)
        cmd = ["debootstrap", f"--variant={rec['variant']}", f"--arch={rec['arch']}",
               "--include=" + ",".join(rec["packages"]), rec["suite"], str(tmp), rec["mirror"]]
        logfile = cache_dir / f"{final.name}.build.log"
        with open(logfile, "w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed (exit {proc.returncode}); see {logfile}")
        # Drop the package cache: it is not needed in the nodes.
        for deb in (tmp / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()
        _post_build(tmp, rec)
        tmp.rename(final)
        print(f"lab: built {final} in {time.monotonic() - start:.0f} s", file=log, flush=True)
    return final


def prune(keep: Path, cache_dir: Path = CACHE_DIR, keep_also: set[Path] | frozenset = frozenset()) -> list[Path]:
    """Remove cached trees other than ``keep`` and ``keep_also``; return what was removed."""
    removed = []
    for tree in sorted(cache_dir.glob("rootfs-*")):
        if tree.is_dir() and tree != keep and tree not in keep_also:
            shutil.rmtree(tree)
            removed.append(tree)
    return removed
