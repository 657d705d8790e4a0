"""mincore-based residency counting on partial pages of a disk-backed file."""
import os
import tempfile

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.inferfleet.gpu.plugins.module_utils import pagecache

PAGE = pagecache.PAGE_SIZE


@pytest.fixture(scope="module")
def disk_dir():
    path = tempfile.mkdtemp(prefix="inferfleet-pagecache-", dir="/var/tmp")
    yield path
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


@settings(max_examples=25, deadline=None)
@given(size=st.integers(min_value=1, max_value=5 * PAGE + 1), warm_pages=st.integers(min_value=0, max_value=6))
def test_resident_bytes_counts_partial_last_page(disk_dir, size, warm_pages):
    path = os.path.join(disk_dir, "f")
    with open(path, "wb") as handle:
        handle.write(b"x" * size)
    pagecache.evict(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.pread(fd, warm_pages * PAGE, 0) if warm_pages else None
    finally:
        os.close(fd)
    total, resident = pagecache.resident_bytes(path)
    assert total == size
    # read-ahead may bring in more than asked, never less; never more than the file
    assert min(size, warm_pages * PAGE) <= resident <= size
    pagecache.evict(path)
    assert pagecache.resident_bytes(path) == (size, 0)
    pagecache.warm(path)
    assert pagecache.resident_bytes(path) == (size, size)


def test_expand_dedups_and_sorts(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("b.safetensors", "a.safetensors"):
        (tmp_path / "a" / name).write_bytes(b"1")
    found = pagecache.expand([str(tmp_path / "a/*.safetensors"), str(tmp_path / "**/*.safetensors")])
    assert [os.path.basename(p) for p in found] == ["a.safetensors", "b.safetensors"]
