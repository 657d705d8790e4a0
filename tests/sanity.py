#!/usr/bin/env python3
"""Run ``ansible-test sanity`` on the collection.

ansible-test must run from inside ``ansible_collections/inferfleet/gpu`` and
resolves the working directory physically, so a symlink is not enough: the
files git knows (tracked, or untracked and not ignored) are copied to
``.build/sanity/ansible_collections/inferfleet/gpu`` and the tests run there.
No docker here, so the tests run ``--local`` with this interpreter.
Extra arguments are passed to ``ansible-test sanity``.
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / ".build" / "sanity" / "ansible_collections" / "inferfleet" / "gpu"


def collection_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def main() -> int:
    if DEST.exists():
        shutil.rmtree(DEST)
    for rel in collection_files():
        target = DEST / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    ansible_test = Path(sys.executable).parent / "ansible-test"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = [str(ansible_test), "sanity", "--local", "--python", py, "--color", "no"] + sys.argv[1:]
    return subprocess.call(cmd, cwd=DEST)


if __name__ == "__main__":
    sys.exit(main())
