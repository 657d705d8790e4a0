"""A stand-in for the Hugging Face hub's revision API (tests only; never shipped).

The hub is unreachable here.  This serves what inferfleet.gpu.vllm_service's
tasks/resolve.yml reads, in the shape the real hub answers
``GET /api/models/{repo_id}/revision/{revision}?blobs=true``:

    {"id": ..., "sha": "<40-hex commit>",
     "siblings": [{"rfilename": "config.json", "blobId": "<git blob id>", "size": N},
                  {"rfilename": "model-00001-of-00002.safetensors", "blobId": ..., "size": N,
                   "lfs": {"sha256": "<64-hex>", "size": N, "pointerSize": 134}}]}

for a model directory on disk: files >= ``lfs_threshold`` bytes (and every
*.safetensors) are "LFS" files with their sha256, the others carry their git
blob id.  Revisions are a dict {branch or tag: commit}; a commit itself also
resolves.  Files are served as the hub serves them to ``hf download``:
``GET /{repo_id}/resolve/{revision}/{path}``; ``corrupt`` names files served
with one byte flipped (same size), as a bad mirror or a broken transfer would.
Requests are recorded (path, Authorization header) for assertions.
"""
import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


def siblings(directory, lfs_threshold=10 * 1024 * 1024):
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, directory)
            with open(full, "rb") as handle:
                data = handle.read()
            entry = {"rfilename": rel, "size": len(data),
                     "blobId": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
            if name.endswith(".safetensors") or len(data) >= lfs_threshold:
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            out.append(entry)
    return out


class StandinHub(object):
    def __init__(self, repo_id, directory, revisions, corrupt=()):
        self.repo_id = repo_id
        self.corrupt = set(corrupt)
        self.directory = directory
        self.revisions = dict(revisions)
        self.requests = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                hub.requests.append({"path": url.path, "query": url.query,
                                     "authorization": self.headers.get("Authorization")})
                files = "/%s/resolve/" % hub.repo_id
                if url.path.startswith(files):
                    return self._file(unquote(url.path[len(files):]))
                prefix = "/api/models/%s/revision/" % hub.repo_id
                if not url.path.startswith(prefix):
                    return self._send(404, {"error": "Repository not found"})
                revision = unquote(url.path[len(prefix):])
                commit = hub.revisions.get(revision)
                if commit is None and revision in hub.revisions.values():
                    commit = revision
                if commit is None:
                    return self._send(404, {"error": "Invalid rev id: %s" % revision})
                return self._send(200, {"id": hub.repo_id, "sha": commit,
                                        "siblings": siblings(hub.directory)})

            def _file(self, rest):
                revision, _sep, rel = rest.partition("/")
                if revision not in hub.revisions and revision not in hub.revisions.values():
                    return self._send(404, {"error": "Invalid rev id: %s" % revision})
                full = os.path.realpath(os.path.join(hub.directory, rel))
                if not full.startswith(os.path.realpath(hub.directory) + os.sep) or not os.path.isfile(full):
                    return self._send(404, {"error": "Entry not found"})
                with open(full, "rb") as handle:
                    data = bytearray(handle.read())
                if rel in hub.corrupt and data:
                    data[len(data) // 2] ^= 0x01
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(bytes(data))
                return None

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
