# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Page cache residency (mincore) and warm-up / eviction of files.

``mincore(2)`` is called through ctypes on a read-only shared mapping made with
libc's ``mmap`` (Python's ``mmap`` object does not expose its address for a
read-only mapping).  Plain functions; nothing here calls Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import glob
import os

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
WINDOW = 1 << 30  # map at most 1 GiB at a time
READ_CHUNK = 8 << 20

_PROT_READ = 1
_MAP_SHARED = 1
_MAP_FAILED = ctypes.c_void_p(-1).value

_libc = None
# mincore sets bit 0 of each byte for a resident page; the other bits are reserved.
_LOW_BIT = bytes(b & 1 for b in range(256))


def _lib():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.mmap.restype = ctypes.c_void_p
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                             ctypes.c_int, ctypes.c_long]
        lib.munmap.restype = ctypes.c_int
        lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.mincore.restype = ctypes.c_int
        lib.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
        _libc = lib
    return _libc


def _oserror(what, path):
    err = ctypes.get_errno()
    return OSError(err, "%s: %s" % (what, os.strerror(err)), path)


def resident_bytes(path):
    """``(size, resident)``: the file's size and how many of its bytes are in the page cache."""
    lib = _lib()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        resident = 0
        offset = 0
        while offset < size:
            length = min(WINDOW, size - offset)
            addr = lib.mmap(None, length, _PROT_READ, _MAP_SHARED, fd, offset)
            if addr is None or addr == _MAP_FAILED:
                raise _oserror("mmap", path)
            try:
                pages = (length + PAGE_SIZE - 1) // PAGE_SIZE
                vec = (ctypes.c_ubyte * pages)()
                if lib.mincore(addr, length, vec) != 0:
                    raise _oserror("mincore", path)
                flags = ctypes.string_at(vec, pages).translate(_LOW_BIT)
            finally:
                lib.munmap(addr, length)
            in_cache = flags.count(b"\x01") * PAGE_SIZE
            if flags[-1:] == b"\x01":
                in_cache -= pages * PAGE_SIZE - length  # the last page may be partial
            resident += in_cache
            offset += length
        return size, resident
    finally:
        os.close(fd)


def warm(path, method="read"):
    """Bring a file into the page cache; return the bytes read (0 for ``willneed``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        if method == "willneed":
            return 0
        total = 0
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        while True:
            count = os.readv(fd, [view])
            if not count:
                break
            total += count
        return total
    finally:
        os.close(fd)


def evict(path):
    """Drop a file's clean pages from the page cache (``POSIX_FADV_DONTNEED``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def expand(patterns, root="/"):
    """Regular files matched by shell globs (``**`` recursive) below ``root``, sorted, unique."""
    found = set()
    for pattern in patterns:
        full = os.path.join(root, pattern.lstrip("/")) if root not in ("", "/") else pattern
        for path in glob.glob(full, recursive=True):
            if os.path.isfile(path):
                found.add(os.path.realpath(path))
    return sorted(found)
