"""What the checksum pass of a model directory costs (inferfleet.gpu.model_manifest).

Writes a model-shaped directory of random shards (default 4 x 2 GiB) on a
disk-backed directory (default /var/tmp), then times building its sha256
manifest four ways:

  cold, no cache   shards evicted from the page cache (POSIX_FADV_DONTNEED), every byte read and hashed
  warm, no cache   shards resident in the page cache, every byte hashed (the CPU cost of sha256)
  cold, cache      shards evicted, digests answered by the stat-keyed cache (what a re-run costs)
  one changed      one shard rewritten in place (one byte flipped, same size): only it is hashed again

and prints seconds and GiB/s per row (a Markdown table with --markdown).  The
directory is removed at the end (--keep leaves it).

    .venv/bin/python bench/model_hash.py                       # 4 x 2 GiB
    .venv/bin/python bench/model_hash.py --shards 2 --size-mib 256 --markdown
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".build"))

from ansible_collections.inferfleet.gpu.plugins.module_utils import modelmanifest as mm  # noqa: E402
from ansible_collections.inferfleet.gpu.plugins.module_utils import pagecache  # noqa: E402

MIB = 1 << 20


def make_model(directory: Path, shards: int, size_mib: int) -> list[Path]:
    directory.mkdir(parents=True)
    names = ["model-%05d-of-%05d.safetensors" % (i + 1, shards) for i in range(shards)]
    (directory / "config.json").write_text(json.dumps({"model_type": "bench"}))
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w%d" % i: n for i, n in enumerate(names)}}))
    block = os.urandom(8 * MIB)
    for name in names:
        with open(directory / name, "wb") as handle:
            for _block in range(size_mib // 8):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
    return [directory / n for n in names]


def evict(paths: list[Path]) -> None:
    for path in paths:
        pagecache.evict(str(path))


def timed(directory: Path, cache_path: str | None) -> tuple[float, dict]:
    hasher = mm.Hasher(mm.HashCache(cache_path))
    start = time.perf_counter()
    mm.build_manifest(str(directory), hasher)
    elapsed = time.perf_counter() - start
    hasher.cache.save()
    return elapsed, hasher.stats()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="inferfleet-model-hash-", dir=args.dir))
    try:
        model = work / "model"
        shards = make_model(model, args.shards, args.size_mib)
        total = sum(p.stat().st_size for p in shards)
        cache = str(work / "hashes.json")
        rows = []

        evict(shards)
        rows.append(("cold page cache, no hash cache",) + timed(model, None))
        rows.append(("warm page cache, no hash cache",) + timed(model, None))
        timed(model, cache)  # fill the hash cache
        evict(shards)
        rows.append(("cold page cache, hash cache (re-run)",) + timed(model, cache))
        with open(shards[0], "r+b") as handle:
            handle.seek(4096)
            byte = handle.read(1)
            handle.seek(4096)
            handle.write(bytes([byte[0] ^ 0xFF]))
        evict(shards)
        rows.append(("one shard changed (same size), hash cache",) + timed(model, cache))

        head = "%d shards x %d MiB = %.1f GiB in %s" % (args.shards, args.size_mib, total / (1 << 30), args.dir)
        if args.markdown:
            print(head + "\n")
            print("| pass | seconds | GiB hashed | GiB/s | files hashed / from cache |")
            print("| --- | ---: | ---: | ---: | ---: |")
        else:
            print(head)
        for name, seconds, stats in rows:
            gib = stats["hashed_bytes"] / (1 << 30)
            rate = ("%.2f" % (gib / seconds)) if stats["hashed_bytes"] else "-"
            if args.markdown:
                row = (name, seconds, gib, rate, stats["hashed_files"], stats["cached_files"])
                print("| %s | %.3f | %.2f | %s | %d / %d |" % row)
            else:
                print("%-45s %8.3f s  %6.2f GiB  %6s GiB/s  hashed %d, cached %d" % (
                    name, seconds, gib, rate, stats["hashed_files"], stats["cached_files"]))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
