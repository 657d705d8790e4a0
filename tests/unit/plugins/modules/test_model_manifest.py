"""Unit tests of inferfleet.gpu.model_manifest on real model trees built in tmp_path."""
import hashlib
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.inferfleet.gpu.plugins.module_utils import modelmanifest as mm
from ansible_collections.inferfleet.gpu.plugins.modules import model_manifest

SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def make_model(directory, size=4096):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump({"model_type": "qwen3_vl"}, handle)
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as handle:
        json.dump({"weight_map": {"a": SHARDS[0], "b": SHARDS[1]}}, handle)
    for index, shard in enumerate(SHARDS):
        with open(os.path.join(directory, shard), "wb") as handle:
            handle.write(bytes([index + 1]) * size)
    return directory


def flip_byte(path, offset=100):
    """Change one byte in place: same size."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def run(capsys, tmp_path, check=False, diff=False, **args):
    args.setdefault("root", str(tmp_path))
    args.setdefault("cache", "/cache/hashes.json")
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    args["_ansible_remote_tmp"] = str(tmp_path)
    args["_ansible_keep_remote_files"] = False
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            model_manifest.main()
    return json.loads(capsys.readouterr().out)


def test_copy_writes_manifest_and_second_run_is_unchanged(capsys, tmp_path):
    make_model(str(tmp_path / "src"))
    first = run(capsys, tmp_path, path="/dest/rev", src="/src")
    assert first["changed"] and first["complete"], first
    assert sorted(first["repaired"]) == sorted(SHARDS + ["config.json", "model.safetensors.index.json"])
    for shard in SHARDS:
        assert sha256(tmp_path / "dest" / "rev" / shard) == sha256(tmp_path / "src" / shard)
        assert first["manifest"][shard] == sha256(tmp_path / "src" / shard)
    written = json.loads((tmp_path / "dest" / "rev" / mm.MANIFEST_NAME).read_text())
    assert written["files"] == first["manifest"]
    second = run(capsys, tmp_path, path="/dest/rev", src="/src")
    assert not second["changed"] and second["complete"]
    assert second["hashed_files"] == 0 and second["cached_files"] == 8  # 4 source + 4 copy, all cached


def test_same_size_byte_flip_is_drift_reported_in_check_mode_and_repaired(capsys, tmp_path):
    make_model(str(tmp_path / "src"))
    run(capsys, tmp_path, path="/dest", src="/src")
    victim = tmp_path / "dest" / SHARDS[1]
    size = victim.stat().st_size
    flip_byte(str(victim))
    assert victim.stat().st_size == size
    check = run(capsys, tmp_path, check=True, diff=True, path="/dest", src="/src")
    assert check["changed"] and check["mismatched"] == [SHARDS[1]] and check["repaired"] == [SHARDS[1]]
    assert "differs" in check["diff"]["before"]
    assert sha256(victim) != sha256(tmp_path / "src" / SHARDS[1])  # check mode changed nothing
    verified = run(capsys, tmp_path, path="/dest", state="verified")  # against the written manifest
    assert not verified["changed"] and not verified["complete"] and verified["mismatched"] == [SHARDS[1]]
    fixed = run(capsys, tmp_path, path="/dest", src="/src")
    assert fixed["changed"] and fixed["complete"] and fixed["repaired"] == [SHARDS[1]]
    assert sha256(victim) == sha256(tmp_path / "src" / SHARDS[1])


def test_cache_is_keyed_by_stat_not_trusted_blindly(capsys, tmp_path):
    make_model(str(tmp_path / "m"))
    manifest = mm.build_manifest(str(tmp_path / "m"), mm.Hasher(mm.HashCache(None)))
    first = run(capsys, tmp_path, path="/m", expected=manifest, state="verified")
    assert first["complete"] and first["hashed_files"] == 4
    warm = run(capsys, tmp_path, path="/m", expected=manifest, state="verified")
    assert warm["hashed_files"] == 0 and warm["cached_files"] == 4
    flip_byte(str(tmp_path / "m" / SHARDS[0]))
    after = run(capsys, tmp_path, path="/m", expected=manifest, state="verified")
    assert after["hashed_files"] == 1 and after["mismatched"] == [SHARDS[0]] and not after["complete"]


def test_no_cache(capsys, tmp_path):
    make_model(str(tmp_path / "m"))
    for _run in range(2):
        result = run(capsys, tmp_path, path="/m", src="/m", state="verified", cache="")
        assert result["hashed_files"] == 4 and result["cached_files"] == 4  # src and path are the same files
    assert not (tmp_path / "cache").exists()


def test_hub_manifest_with_git_blob_ids_removes_bad_shard_without_src(capsys, tmp_path):
    make_model(str(tmp_path / "m"))
    config = (tmp_path / "m" / "config.json").read_bytes()
    expected = {
        "config.json": hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest(),
        SHARDS[0]: sha256(tmp_path / "m" / SHARDS[0]),
        SHARDS[1]: "0" * 64,
    }
    check = run(capsys, tmp_path, check=True, path="/m", expected=expected)
    assert check["changed"] and check["removed"] == [SHARDS[1]] and (tmp_path / "m" / SHARDS[1]).exists()
    result = run(capsys, tmp_path, path="/m", expected=expected)
    assert result["changed"] and result["removed"] == [SHARDS[1]] and not result["complete"]
    assert not (tmp_path / "m" / SHARDS[1]).exists()
    again = run(capsys, tmp_path, path="/m", expected=expected, state="verified")
    assert again["missing"] == [SHARDS[1]] and not again["changed"]
    assert any("missing" in p for p in again["problems"])


def test_structure_problems_without_manifest(capsys, tmp_path):
    make_model(str(tmp_path / "m"))
    os.unlink(tmp_path / "m" / SHARDS[0])
    result = run(capsys, tmp_path, path="/m", state="verified")
    assert not result["complete"] and not result["changed"]
    assert any(SHARDS[0] in p for p in result["problems"])
    assert result["fingerprint"] == ""


def test_bad_expected_value_fails_naming_it(capsys, tmp_path):
    make_model(str(tmp_path / "m"))
    args = dict(path="/m", expected={"config.json": "size:42"}, root=str(tmp_path), cache="",
                _ansible_remote_tmp=str(tmp_path), _ansible_keep_remote_files=False)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            model_manifest.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] and "config.json" in out["msg"] and "size:42" in out["msg"]


def test_fingerprint_changes_with_content():
    assert mm.fingerprint({"a": "0" * 64}) != mm.fingerprint({"a": "1" * 64})


def test_source_that_is_not_a_model_is_not_hashed(capsys, tmp_path):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "big.whl").write_bytes(b"x" * 1024)
    verified = run(capsys, tmp_path, path="/wheels", src="/wheels", state="verified")
    assert not verified["complete"] and verified["hashed_files"] == 0
    assert any("config.json" in p for p in verified["problems"])
    present = run(capsys, tmp_path, path="/dest", src="/wheels")
    assert present["failed"] and "src=/wheels" in present["msg"] and not (tmp_path / "dest").exists()
