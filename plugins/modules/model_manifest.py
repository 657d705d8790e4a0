#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: inferfleet engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: model_manifest
short_description: Verify (and repair) a model directory file by file against sha256 checksums
version_added: 0.2.0
description:
  - Compares every file of a model directory with an expected content manifest (sha256 per file) and reports
    the files that are missing or differ, a changed byte in a shard of the same size included.
  - The expected manifest is O(expected) (for example the LFS object ids the Hugging Face hub publishes for a
    commit), else the manifest of O(src) (hashed here), else the manifest written in O(path) when it was copied.
  - With O(state=present) it repairs O(path) - each missing or differing file is copied from O(src) through a
    temporary file whose digest is checked before it is renamed into place; without O(src) a differing file is
    removed, so a downloader fetches it again - and writes the manifest into O(path) as C(.inferfleet-manifest.json).
  - Digests are cached in O(cache) keyed by path, size, mtime, inode and device, so an unchanged file is not
    read again on the next run; any write to a file changes its mtime and makes it hashed again.
  - Also checks that the directory is a loadable model (config.json parses, every shard the safetensors index
    names is present and non-empty).
author:
  - inferfleet engineers (@inferfleet)
options:
  path:
    description: The model directory (below O(root)).
    type: path
    required: true
  src:
    description:
      - A complete model directory on the target (below O(root)) to copy missing or differing files from.
      - Without O(expected), its own manifest is the expected one.
    type: path
  expected:
    description:
      - Expected digest per file, relative to O(path). 64 hex digits are a sha256, 40 hex digits a git blob id
        (what the hub publishes for files not stored in LFS).
    type: dict
  state:
    description:
      - V(verified) only reads and reports (never C(changed)); V(present) repairs O(path) and writes its manifest.
    type: str
    choices: [present, verified]
    default: present
  revision:
    description: Recorded in the manifest written into O(path) (a hub commit, or where the copy came from).
    type: str
    default: ""
  cache:
    description:
      - File holding the digest cache (below O(root)); empty disables the cache. Not written in check mode.
    type: path
    default: /var/cache/inferfleet/model-hashes.json
  mode:
    description: Mode of the files it copies (directories it creates get the execute bits of readable classes).
    type: str
    default: "0644"
  root:
    description: Root the paths are resolved below. Tests pass a temporary directory.
    type: path
    default: /
attributes:
  check_mode:
    description: Can run in check mode and predict the change without modifying the target.
    support: full
    details: Hashes what it must (reading only) and reports which files would be copied or removed.
  diff_mode:
    description: The files that differ, before and after.
    support: full
  platform:
    description: Target platforms.
    support: full
    platforms: [posix]
notes:
  - The hub publishes sha256 digests only for LFS files (the weight shards); small files are checked by their
    git blob id. A path or mirror source is hashed on the target and its manifest is written next to the copy.
"""

EXAMPLES = r"""
- name: Copy a model from a local path, checking every file's sha256, and write its manifest
  inferfleet.gpu.model_manifest:
    path: /models/qwen3-vl/sha256-0123456789ab
    src: /srv/models-src/qwen3-vl

- name: Verify a hub download against the commit's LFS object ids (read only)
  inferfleet.gpu.model_manifest:
    path: /models/Qwen--Qwen3-VL-30B-A3B-Instruct/0123456789abcdef0123456789abcdef01234567
    expected: "{{ hub_manifest }}"
    state: verified
"""

RETURN = r"""
complete:
  description: The directory is a loadable model and every expected file matches (after the repair; predicted in check mode).
  returned: always
  type: bool
  sample: true
problems:
  description: Why it is not complete.
  returned: always
  type: list
  elements: str
  sample: ["shard model-00002-of-00004.safetensors differs from its expected sha256"]
missing:
  description: Expected files that were absent (before the repair).
  returned: always
  type: list
  elements: str
  sample: []
mismatched:
  description: Files whose digest differed from the expected one (before the repair).
  returned: always
  type: list
  elements: str
  sample: ["model-00002-of-00004.safetensors"]
repaired:
  description: Files copied from O(src) (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["model-00002-of-00004.safetensors"]
removed:
  description: Differing files removed because there is no O(src) (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: []
manifest:
  description: The expected manifest (relative path to digest).
  returned: always
  type: dict
  sample: {"config.json": "5d41402abc4b2a76b9719d911017c592ae2e0b1f6d5e8b1d3f7a9c0e1b2a3c4d"}
fingerprint:
  description: sha256 over the manifest, empty when there is none; what a service unit records.
  returned: always
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
files:
  description: Number of files in the manifest.
  returned: always
  type: int
  sample: 15
hashed_files:
  description: Files actually read to hash them (not answered by the cache).
  returned: always
  type: int
  sample: 1
hashed_bytes:
  description: Bytes read to hash them.
  returned: always
  type: int
  sample: 2147483648
cached_files:
  description: Digests answered by the cache.
  returned: always
  type: int
  sample: 14
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.inferfleet.gpu.plugins.module_utils import modelmanifest as mm


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            src=dict(type="path"),
            expected=dict(type="dict"),
            state=dict(type="str", choices=["present", "verified"], default="present"),
            revision=dict(type="str", default=""),
            cache=dict(type="path", default="/var/cache/inferfleet/model-hashes.json"),
            mode=dict(type="str", default="0644"),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )


def below(root, path):
    return os.path.join(root, path.lstrip("/")) if path else path


def expected_manifest(module, path, src, hasher):
    expected = module.params["expected"]
    if expected:
        bad = sorted(k for k, v in expected.items() if mm.kind_of(str(v)) is None)
        if bad:
            module.fail_json(msg="model_manifest expected: %s must map to a sha256 (64 hex) or a git blob id "
                                 "(40 hex), got %s" % (", ".join(bad), ", ".join(str(expected[k]) for k in bad)))
        return dict((k, str(v)) for k, v in expected.items())
    if src:
        if not os.path.isdir(src):
            module.fail_json(msg="model_manifest src=%s is not a directory" % module.params["src"])
        return mm.build_manifest(src, hasher)
    return mm.read_manifest(path) or {}


def main():
    module = build_module()
    params = module.params
    root = params["root"]
    path = below(root, params["path"])
    src = below(root, params["src"])
    try:
        mode = int(params["mode"], 8)
    except ValueError:
        module.fail_json(msg="model_manifest mode=%s is not an octal file mode such as 0644" % params["mode"])
    if src and not params["expected"]:
        # A source that is not a model is not hashed (it may be any large directory).
        src_problems = mm.structure_problems(src)
        if src_problems:
            problems = ["src %s: %s" % (params["src"], p) for p in src_problems]
            if params["state"] == "present":
                module.fail_json(msg="model_manifest: src=%s is not a complete model: %s"
                                     % (params["src"], "; ".join(src_problems)), problems=problems)
            module.exit_json(changed=False, complete=False, problems=problems, missing=[], mismatched=[],
                             repaired=[], removed=[], manifest={}, fingerprint="", files=0, hashed_files=0,
                             hashed_bytes=0, cached_files=0)
    cache = mm.HashCache(below(root, params["cache"]) if params["cache"] else None)
    hasher = mm.Hasher(cache)
    try:
        expected = expected_manifest(module, path, src, hasher)
        if os.path.isdir(path):
            missing, mismatched = mm.compare(path, expected, hasher)
        else:
            missing, mismatched = sorted(expected), []
    except (IOError, OSError) as exc:
        module.fail_json(msg="model_manifest: %s" % exc)

    drift = sorted(set(missing) | set(mismatched))
    repaired, removed = [], []
    changed = False
    record = {"version": 1, "revision": params["revision"], "source": params["src"] or "", "files": expected}
    if params["state"] == "present":
        if src:
            repaired = [rel for rel in drift if os.path.isfile(os.path.join(src, rel))]
        removed = [rel for rel in mismatched if rel not in repaired]
        changed = bool(repaired or removed)
        manifest_stale = expected and (not os.path.isdir(path) or mm.read_manifest(path) != expected
                                       or _recorded(path) != record)
        changed = changed or bool(manifest_stale)
        if changed and not module.check_mode:
            try:
                for rel in repaired:
                    kind = mm.kind_of(expected[rel]) or "sha256"
                    dest = os.path.abspath(os.path.join(path, rel))
                    digest = mm.copy_verified(os.path.join(src, rel), dest, expected[rel], kind, mode)
                    cache.put(dest, os.stat(dest), kind, digest)
                for rel in removed:
                    mm.remove_file(os.path.join(path, rel))
                _fix_dir_modes(path, mode)
                if manifest_stale or repaired:
                    mm.write_json_atomic(os.path.join(path, mm.MANIFEST_NAME), record)
            except (IOError, OSError, ValueError) as exc:
                module.fail_json(msg="model_manifest: repairing %s failed: %s" % (params["path"], exc),
                                 repaired=repaired, removed=removed)

    still = [rel for rel in drift if rel not in repaired]
    problems = ["%s is missing" % rel for rel in missing if rel in still]
    problems += ["%s differs from its expected %s" % (rel, mm.kind_of(expected[rel]))
                 for rel in mismatched if rel in still]
    if module.check_mode and src and params["state"] == "present":
        structure = mm.structure_problems(src) if drift else mm.structure_problems(path)
    else:
        structure = mm.structure_problems(path)
    problems = structure + problems
    if not module.check_mode:
        cache.save()
    result = dict(
        changed=changed, complete=not problems, problems=problems, missing=missing, mismatched=mismatched,
        repaired=repaired, removed=removed, manifest=expected,
        fingerprint=mm.fingerprint(expected) if expected else "", files=len(expected), **hasher.stats())
    if module._diff and drift:
        result["diff"] = {"before": "".join("%s: %s\n" % (rel, "missing" if rel in missing else "differs")
                                            for rel in drift),
                          "after": "".join("%s: %s\n" % (rel, "copied" if rel in repaired else
                                                         ("removed" if rel in removed else "unchanged"))
                                           for rel in drift)}
    module.exit_json(**result)


def _recorded(path):
    try:
        with open(os.path.join(path, mm.MANIFEST_NAME)) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def _fix_dir_modes(path, mode):
    """Directories the copies created: readable and traversable where the files are readable."""
    dir_mode = mode | ((mode & 0o444) >> 2) | 0o200
    if not os.path.isdir(path):
        os.makedirs(path, dir_mode)
    for dirpath, dirnames, _files in os.walk(path):
        for name in dirnames:
            if not name.startswith("."):
                os.chmod(os.path.join(dirpath, name), dir_mode)
    os.chmod(path, dir_mode)


if __name__ == "__main__":
    main()
