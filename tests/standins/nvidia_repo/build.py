"""Build a STAND-IN of NVIDIA's CUDA apt repository for Debian 12 (test fixture only).

No NVIDIA repository is reachable from this machine and no GPU exists here, so
the ``nvidia_driver`` role is tested against this: a flat apt repository with
the same layout (``.../debian12/x86_64/`` holding ``Packages``, ``Release``,
``InRelease``, the ``.deb`` files and the archive key) and the same package
*names* as NVIDIA's Debian 12 repository, built with ``dpkg-deb`` from tiny
packages that contain no driver at all, and signed with a throwaway GPG key.

Package names follow NVIDIA's Debian 12 CUDA repository:

* compute-only driver: ``nvidia-driver-cuda`` + ``nvidia-kernel-open-dkms``
  (open modules) or ``nvidia-kernel-dkms`` (proprietary), with
  ``libcuda1``, ``libnvidia-ml1``, ``nvidia-smi``, ``nvidia-persistenced``;
  meta packages ``nvidia-open`` and ``cuda-drivers-<branch>`` (whose
  ``Depends: ... (>= <version>)`` would pull a newer branch without an apt pin,
  exactly as the real one does);
* fabric manager: ``nvidia-fabricmanager-<branch>`` / ``libnvidia-nscq-<branch>``
  up to branch 575, ``nvidia-fabricmanager`` / ``libnvidia-nscq`` (providing the
  branch-suffixed name) from 580 on;
* ``cuda-toolkit-12-8`` and ``cuda-keyring``.

Every package's description says it is a stand-in. Maintainer scripts do
nothing (no kernel module is built); ``nvidia-persistenced`` and the fabric
manager ship systemd units that run ``/bin/sleep infinity`` so that enabling
and starting them is real.

Usage::

    build.py --out DIR --base-url http://10.x.y.1:8471 [--versions 570.195.03,580.95.05,590.44.01]

prints a JSON summary (repository URL, key URL, key fingerprint, versions).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DISTRO = "debian12"
ARCH_DIR = "x86_64"
DEB_ARCH = "amd64"
DEFAULT_VERSIONS = ["570.195.03", "580.95.05", "590.44.01"]
TOOLKIT = ("cuda-toolkit-12-8", "12.8.1-1")
KEYRING_VERSION = "1.1-1"
KEYRING_PATH = "/usr/share/keyrings/cuda-archive-keyring.gpg"
STANDIN = ("STAND-IN built by inferfleet's test suite (tests/standins/nvidia_repo): "
           "same name as NVIDIA's package, contains no driver. Never install on a real host.")
MAINTAINER = "inferfleet test stand-in <nobody@invalid>"

UNIT = """[Unit]
Description={desc} (inferfleet test stand-in: runs /bin/sleep infinity)
{after}
[Service]
Type=simple
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_deb(pool: Path, name: str, version: str, *, arch: str = DEB_ARCH, depends: str = "",
             provides: str = "", conflicts: str = "", replaces: str = "", summary: str = "",
             files: dict[str, str | bytes] | None = None, conffiles: list[str] | None = None) -> Path:
    """Build one package with dpkg-deb and return the .deb path."""
    with tempfile.TemporaryDirectory(prefix="standin-deb-") as tmp:
        root = Path(tmp) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        payload = dict(files or {})
        payload.setdefault(f"/usr/share/doc/{name}/README.stand-in",
                           f"{name} {version}\n{STANDIN}\n")
        for path, content in payload.items():
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                dest.write_bytes(content)
            else:
                dest.write_text(content)
            if path.startswith("/usr/bin/"):
                dest.chmod(0o755)
        control = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}",
                   f"Maintainer: {MAINTAINER}", "Section: non-free/libs", "Priority: optional"]
        for field, value in (("Depends", depends), ("Provides", provides),
                             ("Conflicts", conflicts), ("Replaces", replaces)):
            if value:
                control.append(f"{field}: {value}")
        control.append(f"Description: {summary or name} (test stand-in)")
        control.append(f" {STANDIN}")
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        if conffiles:
            (root / "DEBIAN" / "conffiles").write_text("\n".join(conffiles) + "\n")
        out = pool / f"{name}_{version}_{arch}.deb"
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(out)])
        return out


def driver_packages(pool: Path, version: str) -> None:
    """The packages of one driver version ``version`` (e.g. 580.95.05)."""
    branch = int(version.split(".")[0])
    v = f"{version}-1"
    eq = f"(= {v})"
    make_deb(pool, "libcuda1", v, summary="NVIDIA CUDA Driver Library")
    make_deb(pool, "libnvidia-ml1", v, summary="NVIDIA Management Library (NVML) runtime library")
    # The stand-in nvidia-smi answers like the real one on a host where the
    # kernel module is not loaded (exit 9), unless it can read the module version.
    smi = f"""#!/bin/sh
# inferfleet test stand-in for nvidia-smi {version}: there is no GPU here.
# It answers like the real one from two stand-in files a test may write:
# /etc/nvidia-standin/version (instead of /proc/driver/nvidia/version) and
# /etc/nvidia-standin/gpus (one PCI bus id per line).
proc=/proc/driver/nvidia/version
[ -r /etc/nvidia-standin/version ] && proc=/etc/nvidia-standin/version
if [ ! -r "$proc" ]; then
  echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
  exit 9
fi
if ! grep -q " {version} " "$proc"; then
  echo "Failed to initialize NVML: Driver/library version mismatch"
  echo "NVML library version: {version}"
  exit 18
fi
if [ ! -s /etc/nvidia-standin/gpus ]; then
  echo "No devices were found"
  exit 6
fi
case "$*" in
  *--query-gpu=pci.bus_id*) sed 's/^0000:/00000000:/; s/[a-f]/\\U&/g' /etc/nvidia-standin/gpus ;;
  *) n=0; while read -r bus; do echo "GPU $n: NVIDIA stand-in GPU ($bus)"; n=$((n+1)); done < /etc/nvidia-standin/gpus ;;
esac
"""
    make_deb(pool, "nvidia-smi", v, depends=f"libnvidia-ml1 {eq}",
             summary="NVIDIA System Management Interface", files={"/usr/bin/nvidia-smi": smi})
    make_deb(pool, "nvidia-persistenced", v, summary="daemon to maintain persistent software state in the NVIDIA driver",
             files={"/lib/systemd/system/nvidia-persistenced.service":
                    UNIT.format(desc="NVIDIA Persistence Daemon", after="")})
    make_deb(pool, "nvidia-driver-cuda", v,
             depends=f"libcuda1 {eq}, libnvidia-ml1 {eq}, nvidia-smi {eq}",
             summary="NVIDIA driver CUDA integration components (compute only)")
    make_deb(pool, "nvidia-kernel-open-dkms", v, conflicts="nvidia-kernel-dkms",
             provides=f"nvidia-kernel-dkms-any (= {v})",
             summary="NVIDIA open kernel module DKMS source (no module is built by this stand-in)",
             files={f"/usr/src/nvidia-{version}/README.stand-in": STANDIN + "\n"})
    make_deb(pool, "nvidia-kernel-dkms", v, conflicts="nvidia-kernel-open-dkms",
             provides=f"nvidia-kernel-dkms-any (= {v})",
             summary="NVIDIA binary kernel module DKMS source (no module is built by this stand-in)",
             files={f"/usr/src/nvidia-{version}/README.stand-in": STANDIN + "\n"})
    make_deb(pool, "nvidia-open", v,
             depends=f"nvidia-driver-cuda (>= {version}), nvidia-kernel-open-dkms (>= {version})",
             summary="NVIDIA driver metapackage with open GPU kernel modules")
    # Like NVIDIA's own cuda-drivers-<branch>: only a lower bound, so without a
    # pin it pulls the newest branch in the repository.
    make_deb(pool, f"cuda-drivers-{branch}", v,
             depends=f"nvidia-driver-cuda (>= {version}), nvidia-kernel-dkms (>= {version})",
             summary=f"CUDA drivers meta-package, branch {branch}")
    fm_unit = UNIT.format(desc="NVIDIA fabric manager service", after="After=network-online.target\n")
    if branch >= 580:
        make_deb(pool, "nvidia-fabricmanager", v, provides=f"nvidia-fabricmanager-{branch} (= {v})",
                 conflicts="nvidia-fabricmanager-branch", replaces="nvidia-fabricmanager-branch",
                 summary="Fabric Manager for NVSwitch based systems",
                 files={"/lib/systemd/system/nvidia-fabricmanager.service": fm_unit})
        make_deb(pool, "libnvidia-nscq", v, provides=f"libnvidia-nscq-{branch} (= {v})",
                 summary="NVSwitch Configuration and Query library")
    else:
        make_deb(pool, f"nvidia-fabricmanager-{branch}", v, provides="nvidia-fabricmanager-branch",
                 conflicts="nvidia-fabricmanager-branch", replaces="nvidia-fabricmanager-branch",
                 summary="Fabric Manager for NVSwitch based systems",
                 files={"/lib/systemd/system/nvidia-fabricmanager.service": fm_unit})
        make_deb(pool, f"libnvidia-nscq-{branch}", v, summary="NVSwitch Configuration and Query library")


def gen_key(home: Path) -> str:
    """Create a throwaway signing key (no passphrase) and return its fingerprint."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ, GNUPGHOME=str(home))
    run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", "inferfleet throwaway stand-in NVIDIA repo key <nobody@invalid>",
         "ed25519", "sign", "2d"], env=env)
    out = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def write_release(repo: Path) -> Path:
    files = [p for p in ("Packages", "Packages.gz") if (repo / p).exists()]
    lines = ["Origin: inferfleet-standin", "Label: NVIDIA CUDA (inferfleet test stand-in)",
             f"Architectures: {DEB_ARCH}",
             "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()),
             "Description: STAND-IN of NVIDIA's CUDA repository for tests; no driver inside"]
    for algo, field in (("md5", "MD5Sum"), ("sha256", "SHA256")):
        lines.append(f"{field}:")
        for name in files:
            data = (repo / name).read_bytes()
            lines.append(f" {hashlib.new(algo, data).hexdigest()} {len(data)} {name}")
    release = repo / "Release"
    release.write_text("\n".join(lines) + "\n")
    return release


def build(out: Path, base_url: str, versions: list[str]) -> dict:
    repo = out / DISTRO / ARCH_DIR
    if out.exists():
        shutil.rmtree(out)
    repo.mkdir(parents=True)
    gnupg = out.parent / (out.name + ".gnupg")
    if gnupg.exists():
        shutil.rmtree(gnupg)
    fpr = gen_key(gnupg)
    env = dict(os.environ, GNUPGHOME=str(gnupg))
    armored = run(["gpg", "--batch", "--armor", "--export", fpr], env=env).stdout
    binary = subprocess.run(["gpg", "--batch", "--export", fpr], env=env, check=True,
                            capture_output=True).stdout
    key_name = f"{fpr[-8:].lower()}.pub"
    (repo / key_name).write_text(armored)
    repo_url = f"{base_url.rstrip('/')}/{DISTRO}/{ARCH_DIR}/"
    # The stand-in cuda-keyring does what NVIDIA's does: a keyring and a list
    # file using signed-by -- pointing at this stand-in instead of NVIDIA.
    make_deb(repo, "cuda-keyring", KEYRING_VERSION, arch="all",
             summary="GPG keyring for the CUDA repository",
             files={KEYRING_PATH: binary,
                    f"/etc/apt/sources.list.d/cuda-{DISTRO}-{ARCH_DIR}.list":
                        f"deb [signed-by={KEYRING_PATH}] {repo_url} /\n"},
             conffiles=[f"/etc/apt/sources.list.d/cuda-{DISTRO}-{ARCH_DIR}.list"])
    for version in versions:
        driver_packages(repo, version)
    make_deb(repo, TOOLKIT[0], TOOLKIT[1], summary="CUDA Toolkit 12.8 meta-package",
             files={"/usr/local/cuda-12.8/README.stand-in": STANDIN + "\n"})
    packages = run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo).stdout
    (repo / "Packages").write_text(packages)
    with gzip.open(repo / "Packages.gz", "wt") as fh:
        fh.write(packages)
    release = write_release(repo)
    run(["gpg", "--batch", "--yes", "--local-user", fpr, "--clearsign", "-o", str(repo / "InRelease"),
         str(release)], env=env)
    run(["gpg", "--batch", "--yes", "--local-user", fpr, "--armor", "--detach-sign", "-o",
         str(repo / "Release.gpg"), str(release)], env=env)
    shutil.rmtree(gnupg)  # the private key is thrown away once the repository is signed
    return {"repo_url": repo_url, "key_url": repo_url + key_name, "fingerprint": fpr,
            "keyring_deb_url": f"{repo_url}cuda-keyring_{KEYRING_VERSION}_all.deb",
            "versions": versions, "root": str(out),
            "packages": sorted(p.name for p in repo.glob("*.deb"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--out", required=True, type=Path, help="directory to (re)create")
    ap.add_argument("--base-url", required=True, help="URL the directory will be served at")
    ap.add_argument("--versions", default=",".join(DEFAULT_VERSIONS),
                    help="comma-separated driver versions (default %(default)s)")
    args = ap.parse_args(argv)
    versions = [v for v in args.versions.split(",") if v]
    summary = build(args.out.resolve(), args.base_url, versions)
    (args.out / "standin.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
