"""Unit tests of inferfleet.gpu.read_files on trees in tmp_path."""
import os
import socket

from ansible_collections.inferfleet.gpu.plugins.modules import read_files
from helpers import run_module


def run(tmp_path, capsys, check=False, **args):
    args.setdefault("root", str(tmp_path / "root"))
    return run_module(read_files, tmp_path, capsys, check=check, **args)


def make_tree(tmp_path):
    root = tmp_path / "root"
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "etc/sysctl.d/60-x.conf").write_text("vm.swappiness = 1\n")
    os.chmod(root / "etc/sysctl.d/60-x.conf", 0o640)
    (root / "etc/fstab").write_bytes(b"/dev/sda1 / ext4 defaults 0 1\n\xff\n")
    (root / "dev/disk/by-id").mkdir(parents=True)
    (root / "dev/sdb").mkdir(mode=0o710)  # a directory stands in for "not a block device"
    os.chmod(root / "dev/sdb", 0o710)
    os.symlink("../../sdb", root / "dev/disk/by-id/wwn-1")
    os.symlink("/nowhere", root / "dev/disk/by-id/dangling")
    (root / "run/udev").mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "run/udev/control"))
    return root, sock


def test_reads_files_and_kinds(tmp_path, capsys):
    _root, sock = make_tree(tmp_path)
    try:
        res = run(tmp_path, capsys, check=True, paths=[
            "/etc/sysctl.d/60-x.conf", "/etc/fstab", "/run/udev/control", "/run/systemd/container",
            "/dev/disk/by-id/wwn-1", "/dev/disk/by-id/dangling", "/etc/fstab/below-a-file"])
    finally:
        sock.close()
    files = res["files"]
    assert res["changed"] is False
    assert files["/etc/sysctl.d/60-x.conf"] == {"exists": True, "type": "file", "link_target": None, "mode": "0640",
                                                "uid": os.getuid(), "gid": os.getgid(),
                                                "content": "vm.swappiness = 1\n"}
    assert files["/etc/fstab"]["content"] == "/dev/sda1 / ext4 defaults 0 1\n\ufffd\n"
    assert files["/run/udev/control"]["type"] == "socket" and files["/run/udev/control"]["content"] is None
    assert files["/run/systemd/container"] == {"exists": False, "type": None, "link_target": None, "mode": None,
                                               "uid": None, "gid": None, "content": None}
    wwn = files["/dev/disk/by-id/wwn-1"]
    assert (wwn["exists"], wwn["type"], wwn["link_target"], wwn["mode"], wwn["content"]) == (
        True, "directory", "/dev/sdb", "0710", None)
    assert files["/dev/disk/by-id/dangling"]["exists"] is False
    assert files["/dev/disk/by-id/dangling"]["link_target"] is not None
    assert files["/etc/fstab/below-a-file"]["exists"] is False


def test_procfs_files_are_read(tmp_path, capsys):
    res = run(tmp_path, capsys, root="/", paths=["/proc/self/mounts"])
    assert res["files"]["/proc/self/mounts"]["type"] == "file"
    assert " / " in res["files"]["/proc/self/mounts"]["content"]


def test_bad_input_and_big_files_fail(tmp_path, capsys):
    make_tree(tmp_path)[1].close()
    res = run(tmp_path, capsys, paths=["etc/fstab", "/etc/fstab"])
    assert res["failed"] is True and res["msg"] == "paths must be absolute, got 'etc/fstab'"
    res = run(tmp_path, capsys, paths=["/etc/fstab"], max_bytes=0)
    assert res["failed"] is True and res["msg"] == "max_bytes must be at least 1, got 0"
    res = run(tmp_path, capsys, paths=["/etc/fstab"], max_bytes=10)
    assert res["failed"] is True and res["msg"] == "/etc/fstab is larger than max_bytes (10)"
