"""SSH into lab machines, for both back ends: one set of options, keys, commands.

Lab machines are throw-away and their host keys change at every boot, so host
keys are neither checked nor stored; root logs in with a key the lab generated.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

# For ssh run by the lab itself (readiness checks, ``lab vm ssh``).
OPTIONS = (
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=5",
)
# For Ansible (``ansible_ssh_common_args`` in the lab inventories): the same trust.
ANSIBLE_SSH_ARGS_BASE = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR"
# nspawn nodes add a shared connection per host; the VM does not (its scenario
# reboots it, and a persisted master would outlive the guest it spoke to).
ANSIBLE_SSH_ARGS = ANSIBLE_SSH_ARGS_BASE + " -o ControlMaster=auto -o ControlPersist=120s"


def command(key: str | Path, host: str, *remote: str, port: int | None = None) -> list[str]:
    """``ssh`` as root on ``host`` (and ``port``) with ``key``, running ``remote`` (a shell when empty)."""
    cmd = ["ssh", "-i", str(key), *OPTIONS]
    if port is not None:
        cmd += ["-p", str(port)]
    return [*cmd, f"root@{host}", *remote]


def keygen(path: Path, comment: str) -> Path:
    """Create an ed25519 key pair at ``path`` (and ``path``.pub) unless it exists; return ``path``."""
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def authorize(root: Path, pubkey: str) -> Path:
    """Let ``pubkey`` log in as root on the tree at ``root`` (``root/root/.ssh/authorized_keys``)."""
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(pubkey.strip() + "\n")
    os.chmod(keys, 0o600)
    return keys
