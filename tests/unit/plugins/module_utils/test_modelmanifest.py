"""The model directory readers of module_utils/modelmanifest.py, on real trees in tmp_path."""
import hashlib
import json
import os

import pytest
from ansible_collections.inferfleet.gpu.plugins.module_utils import modelmanifest as mm


def make_model(path, shards=("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["Qwen3VLMoeForConditionalGeneration"]}))
    weight_map = {"layer.%d" % i: shard for i, shard in enumerate(shards)}
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    for shard in shards:
        (path / shard).write_bytes(b"\0" * 64)
    return path


def test_complete_sharded_model(tmp_path):
    assert mm.structure_problems(str(make_model(tmp_path / "m"))) == []


def test_missing_and_empty_shards(tmp_path):
    m = make_model(tmp_path / "m")
    (m / "model-00002-of-00002.safetensors").unlink()
    assert mm.structure_problems(str(m)) == ["shard model-00002-of-00002.safetensors named by the index is missing"]
    (m / "model-00002-of-00002.safetensors").write_bytes(b"")
    assert mm.structure_problems(str(m)) == ["shard model-00002-of-00002.safetensors is empty"]


def test_no_weights_and_no_config(tmp_path):
    (tmp_path / "m").mkdir()
    problems = mm.structure_problems(str(tmp_path / "m"))
    assert any("config.json" in p for p in problems)
    assert any(p.startswith("no weights") for p in problems)
    assert mm.structure_problems(str(tmp_path / "absent")) == ["%s is not a directory" % (tmp_path / "absent")]


def test_single_file_model(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text("{}")
    (m / "model.safetensors").write_bytes(b"x" * 10)
    assert mm.structure_problems(str(m)) == []


def test_hidden_entries_are_not_model_files(tmp_path):
    m = make_model(tmp_path / "m")
    (m / ".cache" / "huggingface").mkdir(parents=True)
    (m / ".cache" / "huggingface" / "x.metadata").write_text("x")
    (m / mm.MANIFEST_NAME).write_text("{}")
    (m / "sub").mkdir()
    (m / "sub" / "a.json").write_text("{}")
    assert mm.list_files(str(m)) == ["config.json", "model-00001-of-00002.safetensors",
                                     "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                     os.path.join("sub", "a.json")]


def test_git_blob_id_matches_git(tmp_path):
    (tmp_path / "f").write_bytes(b"hello\n")
    # `git hash-object f` of "hello\n"
    assert mm.hash_file(str(tmp_path / "f"), "gitsha1") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert mm.hash_file(str(tmp_path / "f")) == hashlib.sha256(b"hello\n").hexdigest()
    assert mm.kind_of("ce013625030ba8dba906f756967f9e9ca394464a") == "gitsha1"
    assert mm.kind_of("x" * 64) is None


def test_copy_verified_hashes_while_copying_and_renames_only_on_a_match(tmp_path):
    (tmp_path / "f").write_bytes(b"hello\n")
    blob_id = "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object f`
    dest = tmp_path / "out" / "f"
    assert mm.copy_verified(str(tmp_path / "f"), str(dest), blob_id, kind="gitsha1") == blob_id
    assert dest.read_bytes() == b"hello\n"
    other = tmp_path / "out" / "g"
    with pytest.raises(ValueError, match=hashlib.sha256(b"hello\n").hexdigest()):
        mm.copy_verified(str(tmp_path / "f"), str(other), hashlib.sha256(b"other").hexdigest())
    assert sorted(os.listdir(tmp_path / "out")) == ["f"]


def test_cache_survives_a_reload_and_drops_deleted_files(tmp_path):
    make_model(tmp_path / "m")
    cache = mm.HashCache(str(tmp_path / "cache.json"))
    hasher = mm.Hasher(cache)
    manifest = mm.build_manifest(str(tmp_path / "m"), hasher)
    assert hasher.stats()["hashed_files"] == 4 and cache.save()
    again = mm.Hasher(mm.HashCache(str(tmp_path / "cache.json")))
    assert mm.build_manifest(str(tmp_path / "m"), again) == manifest
    assert again.stats() == {"hashed_files": 0, "hashed_bytes": 0, "cached_files": 4}
    (tmp_path / "m" / "config.json").unlink()
    reloaded = mm.HashCache(str(tmp_path / "cache.json"))
    reloaded.dirty = True
    reloaded.save()
    assert len(json.loads((tmp_path / "cache.json").read_text())["files"]) == 3
