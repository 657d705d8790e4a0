"""The collection's metadata says what an index and a user need, and says it truthfully.

- one licence everywhere: galaxy.yml, every role's meta/main.yml, and a LICENSE file with its text;
- no placeholder links (example.invalid and the like);
- every dependency has an upper bound;
- meta/runtime.yml's requires_ansible is one range that includes the ansible-core running these
  tests, and the roles' min_ansible_version agrees with its lower bound;
- the built artifact leaves the developer-only docs out.
"""
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml
from ansible.module_utils.compat.version import LooseVersion
from ansible.release import __version__ as ANSIBLE_CORE

ROOT = Path(__file__).resolve().parents[3]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
LICENSE_FIRST_LINES = {"GPL-3.0-or-later": "GNU GENERAL PUBLIC LICENSE", "GPL-3.0-only": "GNU GENERAL PUBLIC LICENSE"}
DEVELOPER_DOCS = ["docs/DEVELOPING.md", "docs/lab.md", "docs/lab-vm.md"]


def _bounds(spec: str) -> dict:
    out = {}
    for part in spec.split(","):
        part = part.strip()
        for op in (">=", "<=", "<", ">", "=="):
            if part.startswith(op):
                out[op] = part[len(op):].strip()
                break
        else:
            raise AssertionError(f"cannot read the version range part {part!r} in {spec!r}")
    return out


def test_one_licence_with_its_text():
    assert GALAXY.get("license") and len(GALAXY["license"]) == 1, GALAXY.get("license")
    licence = GALAXY["license"][0]
    assert licence in LICENSE_FIRST_LINES, f"no LICENSE text check for {licence}"
    text = (ROOT / "LICENSE").read_text()
    assert LICENSE_FIRST_LINES[licence] in text.splitlines()[0]
    assert "Version 3, 29 June 2007" in text
    for meta in sorted(ROOT.glob("roles/*/meta/main.yml")):
        info = yaml.safe_load(meta.read_text())["galaxy_info"]
        assert info["license"] == licence, f"{meta.relative_to(ROOT)}: {info['license']} != galaxy.yml {licence}"


def test_links_are_real_or_absent():
    for key in ("repository", "documentation", "issues", "homepage"):
        url = GALAXY.get(key)
        if url is not None:
            assert url.startswith("https://") and ".invalid" not in url and "example." not in url, (key, url)


def test_dependencies_have_upper_bounds():
    assert GALAXY["dependencies"], "ansible.posix and community.general are used"
    for name, spec in GALAXY["dependencies"].items():
        bounds = _bounds(spec)
        assert ">=" in bounds and "<" in bounds, f"{name}: {spec!r} needs a lower and an upper bound"
        assert LooseVersion(bounds[">="]) < LooseVersion(bounds["<"]), (name, spec)


def test_requires_ansible_covers_the_tested_core():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    bounds = _bounds(runtime["requires_ansible"])
    assert ">=" in bounds and "<" in bounds, runtime["requires_ansible"]
    core = LooseVersion(ANSIBLE_CORE)
    assert LooseVersion(bounds[">="]) <= core < LooseVersion(bounds["<"]), (
        f"requires_ansible {runtime['requires_ansible']} does not include the tested ansible-core {ANSIBLE_CORE}")
    # claim only the minor release the tests run: a wider range is untested
    low = LooseVersion(bounds[">="]).version[:2]
    assert low == core.version[:2], f"the lower bound {bounds['>=']} is not the tested {ANSIBLE_CORE}"
    for meta in sorted(ROOT.glob("roles/*/meta/main.yml")):
        info = yaml.safe_load(meta.read_text())["galaxy_info"]
        assert LooseVersion(str(info["min_ansible_version"])).version[:2] == low, meta.relative_to(ROOT)


def test_artifact_leaves_developer_docs_out(tmp_path):
    subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", "--force",
                    "--output-path", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    artifact = tmp_path / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert "LICENSE" in names
    assert "docs/host_tuning.md" in names, "user docs ship"
    for doc in DEVELOPER_DOCS:
        assert (ROOT / doc).is_file(), f"{doc} is listed as a developer doc but does not exist"
        assert doc not in names, f"{doc} is for developers and must not ship"
