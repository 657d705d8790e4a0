"""How much the page-cache warm-up saves on the first read of a weight file.

Writes a file on a disk-backed directory (default /var/tmp), then for N rounds:
evicts it (POSIX_FADV_DONTNEED) and times a full sequential read (cold), and
evicts it, warms it with module_utils.pagecache.warm and times the same read
(warm).  Prints the median times and the ratio cold/warm, plus the cost of a
mincore() residency scan.  Usage: bench/page_cache.py [--size-mib 512] [--rounds 3] [--dir /var/tmp]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".build"))
from ansible_collections.inferfleet.gpu.plugins.module_utils import pagecache  # noqa: E402


def read_all(path):
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        buf = bytearray(8 << 20)
        while handle.readinto(buf):
            pass
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    fd, path = tempfile.mkstemp(prefix="bench-pagecache-", suffix=".safetensors", dir=args.dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            chunk = os.urandom(1 << 20)
            for _chunk in range(args.size_mib):
                handle.write(chunk)
        size_bytes = args.size_mib << 20
        cold, warm, warmup, scan, cold_resident, warm_resident = [], [], [], [], [], []
        for _round in range(args.rounds):
            pagecache.evict(path)
            cold_resident.append(pagecache.resident_bytes(path)[1] / float(size_bytes))
            cold.append(read_all(path))
            pagecache.evict(path)
            start = time.perf_counter()
            pagecache.warm(path)
            warmup.append(time.perf_counter() - start)
            start = time.perf_counter()
            size, resident = pagecache.resident_bytes(path)
            scan.append(time.perf_counter() - start)
            warm_resident.append(resident / float(size))
            warm.append(read_all(path))
        c, w = statistics.median(cold), statistics.median(warm)
        print("file %d MiB on %s, %d rounds (medians)" % (args.size_mib, args.dir, args.rounds))
        print("first read cold:  %.3f s (%.0f MiB/s)" % (c, args.size_mib / c))
        print("warm-up (read):   %.3f s" % statistics.median(warmup))
        print("first read warm:  %.3f s (%.0f MiB/s)" % (w, args.size_mib / w))
        print("mincore scan:     %.4f s" % statistics.median(scan))
        print("resident before the cold read: %.0f%%, after the warm-up: %.0f%% (other work may evict pages)"
              % (100 * min(cold_resident), 100 * min(warm_resident)))
        print("ratio cold/warm first read: %.1fx" % (c / w))
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
