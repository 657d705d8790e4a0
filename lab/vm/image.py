"""The VM's image: Debian 12 with its own kernel, built once with debootstrap and cached.

``python -m lab vm build`` (or the first ``vm up``) builds it with
``debootstrap`` and ``mkfs.ext4 -d`` (no loop devices, no mounts) into
``/var/cache/inferfleet-lab/vm-<recipehash>/`` with the kernel, initrd and the
root key. What differs from the nspawn image: a kernel, an initrd and a disk
image instead of a directory tree.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import time
from pathlib import Path

from lab import apt, paths, recipe, ssh
from lab.vm.base import LabVMError, log, remove_tree, run

CACHE_ROOT = paths.CACHE_DIR

# Everything that decides what the image contains.  Its hash names the cache
# directory, so changing any of it builds a new image and never reuses a stale one.
RECIPE: dict = {
    "version": 1,
    "suite": apt.SUITE,
    "variant": "minbase",
    "packages": sorted([
        "systemd", "systemd-sysv", "dbus", "udev", "kmod", "iproute2", "procps",
        "openssh-server", "sudo", "python3", "python3-apt", "xfsprogs",
        "initramfs-tools", "linux-image-amd64", "util-linux",
    ]),
    "image_size": "3G",
    "files": {
        "etc/fstab": "# <fs> <mount point> <type> <options> <dump> <pass>\n"
                     "/dev/vda / ext4 rw,errors=remount-ro 0 0\n",
        "etc/hostname": "inferfleet-vm\n",
        "etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
        "etc/systemd/network/20-virtio-dhcp.network":
            "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
        # only what the VM boots from: a small initrd unpacks fast under TCG
        "etc/initramfs-tools/modules": "virtio_pci\nvirtio_blk\nvirtio_net\next4\n",
        "etc/initramfs-tools/conf.d/inferfleet.conf": "MODULES=list\nCOMPRESS=gzip\n",
        # -cpu max offers svm/vmx: no nested KVM modules loading for nothing at every boot
        "etc/modprobe.d/inferfleet-vm.conf": "blacklist kvm_amd\nblacklist kvm_intel\nblacklist kvm\n",
        "etc/ssh/sshd_config.d/inferfleet.conf":
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n",
        "etc/resolv.conf": "",
    },
    "enable": ["systemd-networkd.service", "ssh.service"],
    "mask": ["apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer",
             "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "systemd-networkd-wait-online.service"],
}


def recipe_hash(rec: dict | None = None) -> str:
    """Short, stable hash of the image recipe (key order does not matter)."""
    return recipe.digest(RECIPE if rec is None else rec, 12)


def cache_dir(rec: dict | None = None, cache_root: Path | None = None) -> Path:
    return (cache_root or CACHE_ROOT) / f"vm-{recipe_hash(rec)}"


@contextlib.contextmanager
def locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def image_ready(image: Path) -> bool:
    return all((image / f).is_file() for f in ("base.raw", "vmlinuz", "initrd.img", "id_ed25519", "complete"))


def build_image(force: bool = False) -> Path:
    """Build (or reuse) the cached base image; returns its directory."""
    image = cache_dir()
    with locked(image.parent / f"{image.name}.lock"):
        if image_ready(image) and not force:
            return image
        for tool in ("debootstrap", "mkfs.ext4", "ssh-keygen", "qemu-img", "qemu-system-x86_64"):
            if shutil.which(tool) is None:
                raise LabVMError(f"{tool} not found: run `make deps` (requirements-apt.txt)")
        work = image.parent / f"{image.name}.build"
        remove_tree(work)
        rootfs = work / "rootfs"
        rootfs.mkdir(parents=True)
        t0 = time.monotonic()
        try:
            mirror = apt.debian_mirror()
            log(f"building image {image.name} from {mirror} (debootstrap, a few minutes) ...")
            run(["debootstrap", f"--variant={RECIPE['variant']}",
                 "--include=" + ",".join(RECIPE["packages"]), apt.SUITE, str(rootfs), mirror],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            log(f"debootstrap done in {time.monotonic() - t0:.0f} s")
            ssh.keygen(work / "id_ed25519", "inferfleet-lab-vm")
            _configure_rootfs(rootfs, (work / "id_ed25519.pub").read_text())
            kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
            if not kernels:
                raise LabVMError("no kernel in the image (linux-image-amd64 did not install)")
            version = kernels[-1].name[len("vmlinuz-"):]
            shutil.copy2(kernels[-1], work / "vmlinuz")
            shutil.copy2(rootfs / "boot" / f"initrd.img-{version}", work / "initrd.img")
            run(["mkfs.ext4", "-q", "-F", "-L", "inferfleet-root", "-d", str(rootfs),
                 str(work / "base.raw"), RECIPE["image_size"]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            remove_tree(rootfs)
            (work / "recipe.json").write_text(json.dumps(RECIPE, indent=1, sort_keys=True) + "\n")
            (work / "complete").write_text(f"kernel {version}\nbuilt in {time.monotonic() - t0:.0f} s\n")
            remove_tree(image)
            work.rename(image)
        except BaseException:
            remove_tree(work)
            raise
        log(f"image {image} ready in {time.monotonic() - t0:.0f} s")
        return image


def _configure_rootfs(rootfs: Path, pubkey: str) -> None:
    for rel, content in RECIPE["files"].items():
        dest = rootfs / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink():
            dest.unlink()
        dest.write_text(content)
    ssh.authorize(rootfs, pubkey)
    # clean apt lists/archives: smaller image, nothing in it pretends to be fresh.
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (rootfs / sub).glob("*"):
            if f.is_file():
                f.unlink()
    chroot = ["chroot", str(rootfs)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    run(chroot + ["systemctl", "enable", *RECIPE["enable"]], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run(chroot + ["systemctl", "mask", *RECIPE["mask"]], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run(chroot + ["update-initramfs", "-u", "-k", "all"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # the root key is the only way in; no password at all.
    run(chroot + ["passwd", "-l", "root"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
