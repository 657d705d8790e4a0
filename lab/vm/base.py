"""What the VM's image builder and its lifecycle share: the error users see, logging,
commands, and removing a tree that may still have mounts below it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab import mounts


class LabVMError(RuntimeError):
    """A failure the user can act on; main() prints it without a traceback."""


def log(msg: str) -> None:
    print(f"lab vm: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    check = kw.pop("check", True)
    try:
        return subprocess.run(cmd, check=check, **kw)
    except FileNotFoundError as exc:
        raise LabVMError(f"{cmd[0]} not found: install the Debian packages in requirements-apt.txt "
                         "(make deps)") from exc
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise LabVMError(f"{' '.join(cmd[:3])} ... failed (exit {exc.returncode}) {err[-2000:]}") from exc


def remove_tree(path: Path) -> None:
    """Unmount anything below ``path`` (debootstrap may leave /proc, /sys), then delete it."""
    if not path.exists():
        return
    for mnt in mounts.mounts_under(path):
        subprocess.run(["umount", "-l", mnt], check=False)
    if mounts.mounts_under(path):
        raise LabVMError(f"{path} still has mounts below it; not deleting it")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)
