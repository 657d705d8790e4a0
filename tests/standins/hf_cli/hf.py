"""A stand-in for the ``hf`` command of huggingface_hub (tests only; never shipped).

Only what inferfleet.gpu.vllm_service's tasks/model.yml runs:

    hf download REPO_ID --revision COMMIT --local-dir DIR

with the endpoint in HF_ENDPOINT: it lists the files of the revision
(``/api/models/REPO_ID/revision/COMMIT``) and fetches every file that is not in
DIR yet (``/REPO_ID/resolve/COMMIT/PATH``), through a temporary file, as the
real command does.  It checks nothing (the role checks every file after it).
"""
import argparse
import json
import os
import sys
import urllib.parse
import urllib.request


def main(argv):
    parser = argparse.ArgumentParser(prog="hf")
    sub = parser.add_subparsers(dest="command", required=True)
    download = sub.add_parser("download")
    download.add_argument("repo_id")
    download.add_argument("--revision", required=True)
    download.add_argument("--local-dir", required=True)
    args = parser.parse_args(argv)
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    headers = {"Authorization": "Bearer " + os.environ["HF_TOKEN"]} if os.environ.get("HF_TOKEN") else {}
    quoted = urllib.parse.quote(args.revision, safe="")
    request = urllib.request.Request("%s/api/models/%s/revision/%s" % (endpoint, args.repo_id, quoted), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        info = json.load(answer)
    for sibling in info.get("siblings", []):
        rel = sibling["rfilename"]
        dest = os.path.join(args.local_dir, rel)
        if os.path.exists(dest):
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        url = "%s/%s/resolve/%s/%s" % (endpoint, args.repo_id, quoted, urllib.parse.quote(rel))
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
            data = answer.read()
        with open(dest + ".incomplete", "wb") as handle:
            handle.write(data)
        os.replace(dest + ".incomplete", dest)
        print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
