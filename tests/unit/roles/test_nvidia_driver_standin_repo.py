"""The stand-in NVIDIA apt repository (tests/standins/nvidia_repo) is what the scenario needs.

It is a test fixture, but the nvidia_driver scenario's verdicts rest on it:
the package names per branch must be NVIDIA's, every package must say it is
a stand-in, the metadata must be consistent (sizes and hashes), the
signature must verify with the key the stand-in cuda-keyring ships, the
maintainer scripts must not exist (nothing builds a kernel module), and the
server must start on the address given and stop by its pid.
"""
import gzip
import hashlib
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "standins" / "nvidia_repo"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dpkg-deb", "dpkg-scanpackages", "gpg", "gpgv")),
    reason="needs dpkg-dev and gnupg (requirements-apt.txt)")


def parse_packages(text: str) -> list[dict]:
    out = []
    for stanza in text.strip().split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith(" ") and key:
                fields[key] += "\n" + line.strip()
            else:
                key, _sep, value = line.partition(":")
                fields[key] = value.strip()
        out.append(fields)
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    out = tmp_path_factory.mktemp("standin") / "repo"
    subprocess.run([sys.executable, str(STANDIN / "build.py"), "--out", str(out),
                    "--base-url", "http://192.0.2.1:8471", "--versions", "570.195.03,580.95.05,590.44.01"],
                   check=True, capture_output=True)
    d = out / "debian12" / "x86_64"
    return {"dir": d, "packages": parse_packages((d / "Packages").read_text())}


def by_name(repo):
    found = {}
    for p in repo["packages"]:
        found.setdefault(p["Package"], []).append(p["Version"])
    return found


def test_names_follow_nvidia_per_branch(repo):
    names = by_name(repo)
    # up to 575 the fabric manager and NSCQ carry the branch, from 580 on they do not
    assert names["nvidia-fabricmanager-570"] == ["570.195.03-1"]
    assert names["libnvidia-nscq-570"] == ["570.195.03-1"]
    assert sorted(names["nvidia-fabricmanager"]) == ["580.95.05-1", "590.44.01-1"]
    assert sorted(names["libnvidia-nscq"]) == ["580.95.05-1", "590.44.01-1"]
    assert "nvidia-fabricmanager-580" not in names
    for pkg in ("nvidia-driver-cuda", "nvidia-kernel-open-dkms", "nvidia-kernel-dkms", "nvidia-persistenced",
                "libcuda1", "libnvidia-ml1", "nvidia-smi", "nvidia-open"):
        assert len(names[pkg]) == 3, pkg
    for branch in (570, 580, 590):
        assert f"cuda-drivers-{branch}" in names
    assert names["cuda-keyring"] == ["1.1-1"] and "cuda-toolkit-12-8" in names


def test_580_fabric_manager_provides_the_branch_name(repo):
    fm = [p for p in repo["packages"] if p["Package"] == "nvidia-fabricmanager" and p["Version"].startswith("580.")]
    assert "nvidia-fabricmanager-580" in fm[0]["Provides"]


def test_meta_package_only_has_a_lower_bound_like_nvidia_s(repo):
    meta = next(p for p in repo["packages"] if p["Package"] == "cuda-drivers-580")
    assert "nvidia-driver-cuda (>= 580.95.05)" in meta["Depends"] and "<<" not in meta["Depends"]


def test_every_package_says_it_is_a_stand_in(repo):
    for p in repo["packages"]:
        assert "stand-in" in p["Description"].lower(), p["Package"]
        assert "stand-in" in p["Maintainer"], p["Package"]


def test_no_maintainer_scripts(repo):
    for deb in repo["dir"].glob("*.deb"):
        members = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], check=True, capture_output=True).stdout
        listing = subprocess.run(["tar", "-t"], input=members, check=True, capture_output=True).stdout.decode()
        assert not any(s in listing for s in ("postinst", "preinst", "prerm", "postrm")), deb.name


def test_services_are_stand_in_units(repo, tmp_path):
    for name in ("nvidia-persistenced_580.95.05-1_amd64.deb", "nvidia-fabricmanager_580.95.05-1_amd64.deb"):
        dest = tmp_path / name
        subprocess.run(["dpkg-deb", "-x", str(repo["dir"] / name), str(dest)], check=True)
        unit = next(dest.glob("lib/systemd/system/*.service")).read_text()
        assert "ExecStart=/bin/sleep infinity" in unit and "stand-in" in unit


def test_release_hashes_match(repo):
    release = (repo["dir"] / "Release").read_text()
    for name in ("Packages", "Packages.gz"):
        data = (repo["dir"] / name).read_bytes()
        assert f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}" in release
    assert gzip.decompress((repo["dir"] / "Packages.gz").read_bytes()) == (repo["dir"] / "Packages").read_bytes()
    for p in repo["packages"]:
        data = (repo["dir"] / p["Filename"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == p["SHA256"] and len(data) == int(p["Size"])


def test_signature_verifies_with_the_keyring_package(repo, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(repo["dir"] / "cuda-keyring_1.1-1_all.deb"), str(tmp_path)], check=True)
    keyring = tmp_path / "usr/share/keyrings/cuda-archive-keyring.gpg"
    ok = subprocess.run(["gpgv", "--keyring", str(keyring), str(repo["dir"] / "InRelease")], capture_output=True,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    # a tampered release must not verify (the test can fail)
    bad = tmp_path / "InRelease.bad"
    bad.write_text((repo["dir"] / "InRelease").read_text().replace("Packages.gz", "Packages.xz"))
    assert subprocess.run(["gpgv", "--keyring", str(keyring), str(bad)], capture_output=True,
                          check=False).returncode != 0
    listfile = (tmp_path / "etc/apt/sources.list.d/cuda-debian12-x86_64.list").read_text()
    assert listfile == ("deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] "
                        "http://192.0.2.1:8471/debian12/x86_64/ /\n")
    # the private key was thrown away
    assert not any(p.name.endswith(".gnupg") for p in repo["dir"].parents[1].parent.iterdir())


def test_server_starts_and_stops(repo, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pidfile = tmp_path / "serve.pid"
    serve = [sys.executable, str(STANDIN / "serve.py")]
    root = repo["dir"].parents[1]
    subprocess.run(serve + ["start", "--root", str(root), "--bind", "127.0.0.1", "--port", str(port),
                            "--pidfile", str(pidfile)], check=True, capture_output=True)
    pid = int(pidfile.read_text())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debian12/x86_64/InRelease", timeout=5) as r:
            assert r.read() == (repo["dir"] / "InRelease").read_bytes()
    finally:
        subprocess.run(serve + ["stop", "--pidfile", str(pidfile)], check=True, capture_output=True)
    assert not Path(f"/proc/{pid}").exists() or b"http.server" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not pidfile.exists()
    # stop is idempotent
    assert subprocess.run(serve + ["stop", "--pidfile", str(pidfile)], capture_output=True,
                          check=False).returncode == 0
