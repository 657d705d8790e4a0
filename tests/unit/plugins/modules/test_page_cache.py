"""Unit tests of inferfleet.gpu.page_cache on real files.

Files on tmpfs are always resident, so the evicted case uses a disk-backed
directory under /var/tmp (skipped when /var/tmp is itself tmpfs).
"""
import os
import shutil
import tempfile

import pytest

from ansible_collections.inferfleet.gpu.plugins.module_utils import pagecache
from ansible_collections.inferfleet.gpu.plugins.modules import page_cache
from helpers import run_module

MIB = 1024 * 1024


def fs_type(path):
    best, kind = "", None
    with open("/proc/mounts") as handle:
        for line in handle:
            fields = line.split()
            mnt = fields[1]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, fields[2]
    return kind


@pytest.fixture()
def disk_dir():
    if fs_type("/var/tmp") in ("tmpfs", "ramfs", None):
        pytest.skip("/var/tmp is not disk-backed")
    path = tempfile.mkdtemp(prefix="inferfleet-pagecache-", dir="/var/tmp")
    yield path
    shutil.rmtree(path)


def make_weights(directory, sizes):
    paths = []
    os.makedirs(os.path.join(directory, "model"), exist_ok=True)
    for index, size in enumerate(sizes):
        path = os.path.join(directory, "model", "model-%05d.safetensors" % index)
        with open(path, "wb") as handle:
            handle.write(os.urandom(size))
        paths.append(path)
    with open(os.path.join(directory, "model", "config.json"), "w") as handle:
        handle.write("{}")
    return paths


def run(capsys, tmp, check=False, **args):
    return run_module(page_cache, tmp, capsys, check=check, **args)


def test_evicted_files_are_read_and_reported(disk_dir, tmp_path, capsys):
    files = make_weights(disk_dir, [3 * MIB + 17, 2 * MIB])
    for path in files:
        pagecache.evict(path)
        assert pagecache.resident_bytes(path)[1] == 0
    res = run(capsys, tmp_path, paths=[disk_dir + "/model/*.safetensors"])
    assert res["changed"] is True
    assert res["files"] == 2
    assert res["bytes_total"] == 5 * MIB + 17
    assert res["bytes_resident_before"] == 0
    assert res["files_resident_before"] == 0
    assert res["bytes_read"] == 5 * MIB + 17
    assert res["bytes_resident_after"] == 5 * MIB + 17
    for path in files:
        assert pagecache.resident_bytes(path) == (os.path.getsize(path), os.path.getsize(path))


def test_already_resident_is_no_change(disk_dir, tmp_path, capsys):
    make_weights(disk_dir, [MIB, MIB])
    run(capsys, tmp_path, paths=[disk_dir + "/model/*.safetensors"])
    res = run(capsys, tmp_path, paths=[disk_dir + "/model/*.safetensors"])
    assert res["changed"] is False
    assert res["files_resident_before"] == 2
    assert res["bytes_read"] == 0


def test_partly_resident_reads_only_the_missing_file(disk_dir, tmp_path, capsys):
    files = make_weights(disk_dir, [MIB, 2 * MIB])
    pagecache.warm(files[0])
    pagecache.evict(files[1])
    res = run(capsys, tmp_path, paths=[disk_dir + "/model/*.safetensors"])
    assert res["changed"] is True
    assert res["files_resident_before"] == 1
    assert res["bytes_resident_before"] == MIB
    assert res["bytes_read"] == 2 * MIB


def test_check_mode_reports_what_would_be_read(disk_dir, tmp_path, capsys):
    files = make_weights(disk_dir, [2 * MIB])
    pagecache.evict(files[0])
    res = run(capsys, tmp_path, check=True, paths=[disk_dir + "/model/*.safetensors"])
    assert res["changed"] is True
    assert res["bytes_read"] == 2 * MIB
    assert pagecache.resident_bytes(files[0])[1] == 0


def test_evicted_state(disk_dir, tmp_path, capsys):
    files = make_weights(disk_dir, [MIB])
    pagecache.warm(files[0])
    res = run(capsys, tmp_path, state="evicted", paths=[files[0]])
    assert res["changed"] is True
    assert res["bytes_resident_after"] == 0
    res = run(capsys, tmp_path, state="evicted", paths=[files[0]])
    assert res["changed"] is False


def test_recursive_glob_and_root(disk_dir, tmp_path, capsys):
    make_weights(disk_dir, [4096, 4096])
    res = run(capsys, tmp_path, root=disk_dir, paths=["/**/*.json"])
    assert res["files"] == 1
    assert res["details"][0]["path"].endswith("model/config.json")


def test_tmpfs_files_are_always_resident(tmp_path, capsys):
    if fs_type("/dev/shm") != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    directory = tempfile.mkdtemp(dir="/dev/shm")
    try:
        files = make_weights(directory, [MIB])
        pagecache.evict(files[0])  # no effect on tmpfs
        res = run(capsys, tmp_path, paths=files)
        assert res["changed"] is False
        assert res["bytes_resident_before"] == MIB
    finally:
        shutil.rmtree(directory)


def test_empty_match_fails_unless_allowed(tmp_path, capsys):
    res = run(capsys, tmp_path, paths=[str(tmp_path / "nothing/*.safetensors")])
    assert res["failed"] is True and "match no file" in res["msg"]
    res = run(capsys, tmp_path, paths=[str(tmp_path / "nothing/*.safetensors")], allow_empty=True)
    assert res["changed"] is False and res["files"] == 0


def test_empty_file_is_resident(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert pagecache.resident_bytes(str(path)) == (0, 0)
