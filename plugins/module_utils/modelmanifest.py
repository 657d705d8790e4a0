# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content manifests of model directories: sha256 per file, with a hash cache.

A manifest maps a file's path relative to the model directory to its digest:
64 hex digits are a sha256 (what the Hugging Face hub publishes as the LFS
object id of a weight shard), 40 hex digits a git blob id (``sha1("blob N\\0" +
content)``, what the hub publishes for small non-LFS files such as
config.json).  Hashing a 60 GB model takes minutes, so digests are cached per
file keyed by (size, mtime_ns, inode, device): an unchanged file is not read
again, a rewritten one (any byte, same size included: a write changes mtime) is.

Plain functions taking paths; nothing here calls Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import shutil
import tempfile

MANIFEST_NAME = ".inferfleet-manifest.json"
CHUNK = 8 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GITSHA1 = re.compile(r"^[0-9a-f]{40}$")


def kind_of(digest):
    """'sha256' or 'gitsha1' for a digest string, None for anything else."""
    if _SHA256.match(digest or ""):
        return "sha256"
    if _GITSHA1.match(digest or ""):
        return "gitsha1"
    return None


def list_files(directory):
    """Regular files below ``directory``, relative, sorted; hidden names (the manifest,
    a downloader's ``.cache/``) are not part of the model."""
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(os.path.relpath(full, directory))
    return sorted(out)


def _stat_key(st):
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


class HashCache(object):
    """Digests of files keyed by absolute path and (size, mtime_ns, inode, device)."""

    def __init__(self, path=None):
        self.path = path
        self.entries = {}
        self.dirty = False
        if path and os.path.isfile(path):
            try:
                with open(path) as handle:
                    data = json.load(handle)
                if isinstance(data, dict) and data.get("version") == 1:
                    self.entries = data.get("files", {})
            except (IOError, OSError, ValueError):
                self.entries = {}

    def get(self, path, st, kind):
        entry = self.entries.get(path)
        if entry and entry.get("key") == _stat_key(st):
            return entry.get(kind)
        return None

    def put(self, path, st, kind, digest):
        entry = self.entries.get(path)
        if not entry or entry.get("key") != _stat_key(st):
            entry = {"key": _stat_key(st)}
            self.entries[path] = entry
        if entry.get(kind) != digest:
            entry[kind] = digest
            self.dirty = True

    def forget_missing(self):
        for path in [p for p in self.entries if not os.path.exists(p)]:
            del self.entries[path]
            self.dirty = True

    def save(self):
        if not self.path or not self.dirty:
            return False
        self.forget_missing()
        write_json_atomic(self.path, {"version": 1, "files": self.entries}, mode=0o600)
        self.dirty = False
        return True


def write_json_atomic(path, data, mode=0o644):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def new_digest(path, kind="sha256"):
    """The hash object for the file ``path``, before its content: 'sha256', or 'gitsha1' (git's
    blob id: SHA-1 over a ``blob SIZE\\0`` header, then the content)."""
    if kind == "gitsha1":
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % os.path.getsize(path))
        return digest
    return hashlib.sha256()


def hash_file(path, kind="sha256"):
    """Digest of one file: 'sha256' or 'gitsha1' (git's blob id)."""
    digest = new_digest(path, kind)
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


class Hasher(object):
    """Hashes files through a HashCache and counts what it really read."""

    def __init__(self, cache):
        self.cache = cache
        self.hashed_files = 0
        self.hashed_bytes = 0
        self.cached_files = 0

    def digest(self, path, kind="sha256"):
        path = os.path.abspath(path)
        st = os.stat(path)
        cached = self.cache.get(path, st, kind)
        if cached:
            self.cached_files += 1
            return cached
        value = hash_file(path, kind)
        after = os.stat(path)
        if _stat_key(after) == _stat_key(st):
            self.cache.put(path, st, kind, value)
        self.hashed_files += 1
        self.hashed_bytes += st.st_size
        return value

    def stats(self):
        return {"hashed_files": self.hashed_files, "hashed_bytes": self.hashed_bytes,
                "cached_files": self.cached_files}


def build_manifest(directory, hasher):
    """{relative path: sha256} of every model file in ``directory``."""
    return dict((rel, hasher.digest(os.path.join(directory, rel))) for rel in list_files(directory))


def compare(directory, expected, hasher):
    """Files of ``expected`` missing from ``directory`` or with another digest."""
    missing, mismatched = [], []
    for rel in sorted(expected):
        full = os.path.join(directory, rel)
        if not os.path.isfile(full):
            missing.append(rel)
            continue
        kind = kind_of(expected[rel]) or "sha256"
        if hasher.digest(full, kind) != expected[rel]:
            mismatched.append(rel)
    return missing, mismatched


def read_manifest(directory):
    """The manifest written in ``directory`` at copy time, or None."""
    try:
        with open(os.path.join(directory, MANIFEST_NAME)) as handle:
            data = json.load(handle)
        files = data.get("files")
        return files if isinstance(files, dict) else None
    except (IOError, OSError, ValueError, AttributeError):
        return None


def fingerprint(manifest):
    """One digest over a manifest (what a service unit records)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def copy_verified(src, dest, expected, kind="sha256", mode=0o644):
    """Copy ``src`` to ``dest`` through a temporary file in dest's directory, hashing while
    copying; the rename happens only when the copy's digest equals ``expected``."""
    directory = os.path.dirname(dest)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        digest = new_digest(src, kind)
        with os.fdopen(fd, "wb") as out, open(src, "rb") as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if expected and digest.hexdigest() != expected:
            raise ValueError("%s: copied content has %s %s, expected %s (the source changed or is corrupt)"
                             % (src, kind, digest.hexdigest(), expected))
        os.chmod(tmp, mode)
        os.rename(tmp, dest)
        return digest.hexdigest()
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def structure_problems(directory):
    """What makes ``directory`` not a loadable model: config.json, and every shard the
    safetensors index names (or a single model.safetensors), present and non-empty."""
    problems = []
    if not os.path.isdir(directory):
        return ["%s is not a directory" % directory]
    try:
        with open(os.path.join(directory, "config.json"), "rb") as handle:
            json.loads(handle.read())
    except (IOError, OSError, ValueError) as exc:
        problems.append("config.json missing or unreadable: %s" % exc)
    index = os.path.join(directory, "model.safetensors.index.json")
    shards = []
    if os.path.exists(index):
        try:
            with open(index, "rb") as handle:
                shards = sorted(set(json.loads(handle.read())["weight_map"].values()))
        except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append("model.safetensors.index.json unreadable: %s" % exc)
        if not shards and not problems:
            problems.append("model.safetensors.index.json names no shard")
    elif os.path.exists(os.path.join(directory, "model.safetensors")):
        shards = ["model.safetensors"]
    else:
        problems.append("no weights: neither model.safetensors.index.json nor model.safetensors")
    for shard in shards:
        try:
            size = os.path.getsize(os.path.join(directory, shard))
        except OSError:
            problems.append("shard %s named by the index is missing" % shard)
            continue
        if size == 0:
            problems.append("shard %s is empty" % shard)
    return problems


def remove_file(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
