"""Is a model directory complete?  Standard library only; runs on the target.

Usage: python3 model_check.py DIR
Complete means: config.json parses, and either model.safetensors.index.json
parses and every shard it names exists and is non-empty, or a single
model.safetensors exists and is non-empty.  Prints one JSON object:
{"path", "complete", "problems": [...], "shards": [...], "fingerprint"}
where fingerprint is a sha256 over config.json, the index and the shard sizes
(what the service unit records, so changed weights restart the server).
Shipped by inferfleet.gpu.vllm_service (files/model_check.py).
"""
import hashlib
import json
import os
import sys


def check(path):
    problems = []
    shards = []
    digest = hashlib.sha256()
    if not os.path.isdir(path):
        return {"path": path, "complete": False, "problems": ["%s is not a directory" % path],
                "shards": [], "fingerprint": ""}
    config = os.path.join(path, "config.json")
    try:
        with open(config, "rb") as f:
            data = f.read()
        json.loads(data)
        digest.update(data)
    except (OSError, ValueError) as exc:
        problems.append("config.json missing or unreadable: %s" % exc)
    index = os.path.join(path, "model.safetensors.index.json")
    single = os.path.join(path, "model.safetensors")
    if os.path.exists(index):
        try:
            with open(index, "rb") as f:
                data = f.read()
            shards = sorted(set(json.loads(data)["weight_map"].values()))
            digest.update(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append("model.safetensors.index.json unreadable: %s" % exc)
        if not shards and not problems:
            problems.append("model.safetensors.index.json names no shard")
    elif os.path.exists(single):
        shards = ["model.safetensors"]
    else:
        problems.append("no weights: neither model.safetensors.index.json nor model.safetensors")
    for shard in shards:
        fpath = os.path.join(path, shard)
        try:
            size = os.path.getsize(fpath)
        except OSError:
            problems.append("shard %s named by the index is missing" % shard)
            continue
        if size == 0:
            problems.append("shard %s is empty" % shard)
        digest.update(("%s:%d\n" % (shard, size)).encode())
    return {"path": path, "complete": not problems, "problems": problems, "shards": shards,
            "fingerprint": digest.hexdigest() if not problems else ""}


def main():
    print(json.dumps(check(sys.argv[1])))


if __name__ == "__main__":
    main()
