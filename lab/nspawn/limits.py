"""The one host kernel limit the lab changes: ``fs.inotify.max_user_instances``.

Each booted node takes 6-7 inotify instances (systemd, journald, logind, ...)
and Debian's default is 128, so a 16-node lab would fail to boot.  The first
lab to come up records the original value in ``/run/inferfleet-lab/inotify.json``
and raises the limit; the last lab to go down restores it and removes the file.
"""
from __future__ import annotations

import json
from pathlib import Path

from lab import state as st

SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")
WANTED = 8192


def record_path(run_dir: Path = st.RUN_DIR) -> Path:
    return run_dir / "inotify.json"


def read(sysctl: Path = SYSCTL) -> int:
    return int(sysctl.read_text().strip())


def raise_limit(run_dir: Path = st.RUN_DIR, sysctl: Path = SYSCTL, wanted: int = WANTED) -> dict:
    rec_path = record_path(run_dir)
    current = read(sysctl)
    if rec_path.is_file():
        rec = json.loads(rec_path.read_text())
    else:
        rec = {"original": current, "set": max(current, wanted)}
        st.write_atomic(rec_path, json.dumps(rec) + "\n")
    if current < rec["set"]:
        sysctl.write_text(f"{rec['set']}\n")
    return rec


def restore_if_last(run_dir: Path = st.RUN_DIR, sysctl: Path = SYSCTL) -> str | None:
    """Restore the original limit when no lab is left; return what was done."""
    rec_path = record_path(run_dir)
    if st.lab_names(run_dir) or not rec_path.is_file():
        return None
    rec = json.loads(rec_path.read_text())
    current = read(sysctl)
    if current == rec["set"]:
        sysctl.write_text(f"{rec['original']}\n")
        msg = f"fs.inotify.max_user_instances restored to {rec['original']}"
    else:
        msg = (f"fs.inotify.max_user_instances is {current}, not the {rec['set']} the lab set: "
               "someone else changed it, left as is")
    rec_path.unlink()
    return msg
