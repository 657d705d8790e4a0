"""Run ``ansible-test sanity`` on the collection.

ansible-test must run from inside ``ansible_collections/inferfleet/gpu`` and
resolves the working directory physically, so a symlink is not enough: the
files git knows (tracked, or untracked and not ignored) are copied to
``/var/tmp/inferfleet-sanity-XXXX/ansible_collections/inferfleet/gpu`` (one per run) (outside the
repository: inside it, ansible-test would ask this repository's git which
files exist and skip the ignored copy) and the tests run there.
No docker here, so the tests run ``--local`` with this interpreter.
Extra arguments are passed to ``ansible-test sanity``.
"""
import os
import re
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collection_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def install_pip_bootstrap() -> None:
    """Put tests/get_pip_bootstrap.py where ansible-test caches get-pip.py."""
    import ansible_test  # pylint: disable=import-outside-toplevel
    src = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    version = re.search(r"pip='([0-9.]+)'", src.read_text()).group(1)
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{version.replace('.', '_')}.py"
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "tests" / "get_pip_bootstrap.py", cache)


def main() -> int:
    install_pip_bootstrap()
    top = Path(tempfile.mkdtemp(prefix="inferfleet-sanity-", dir="/var/tmp"))
    try:
        return run(top / "ansible_collections" / "inferfleet" / "gpu")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run(dest: Path) -> int:
    for rel in collection_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    ansible_test = Path(sys.executable).parent / "ansible-test"
    # ansible-test looks interpreters up on PATH and would find pyenv's shims
    # first; name this one explicitly.
    cmd = [str(ansible_test), "sanity", "--local", "--python-interpreter", sys.executable,
           "--color", "no"] + sys.argv[1:]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    return subprocess.call(cmd, cwd=dest, env=env)


if __name__ == "__main__":
    sys.exit(main())
