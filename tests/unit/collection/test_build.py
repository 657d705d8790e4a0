"""The collection builds into an installable artifact, and the installed copy works.

Builds with ``ansible-galaxy collection build``, installs the tarball into a
temporary collections path (``--no-deps``: ansible.posix and community.general
come with the ``ansible`` package) and asks ``ansible-doc`` for a module from
the installed copy, not from the working tree.
"""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def test_build_and_install(tmp_path: Path) -> None:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path",
                    str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    artifact = tmp_path / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert artifact.is_file()
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert "MANIFEST.json" in names
    assert "plugins/modules/gpu_topology.py" in names
    assert "playbooks/site.yml" in names
    # Nothing of the development machinery ships.
    for prefix in ("lab/", "tests/", ".venv/", ".build/", "bench/"):
        assert not any(n.startswith(prefix) for n in names), f"{prefix} must not ship in the artifact"

    dest = tmp_path / "collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "--no-deps", "-p", str(dest),
                    str(artifact)], check=True, capture_output=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(dest), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    out = subprocess.run([str(BIN / "ansible-doc"), "--json", "inferfleet.gpu.gpu_topology"],
                         env=env, check=True, capture_output=True, text=True).stdout
    assert str(dest) in out, "ansible-doc must read the installed copy"
