"""A Hugging Face Hub stand-in on 127.0.0.1 speaking the few endpoints huggingface_hub needs to resolve
a revision and download a snapshot (HF_ENDPOINT=http://127.0.0.1:PORT):

- GET  /api/models/{repo}/revision/{rev}   -> {"id", "sha", "siblings"}
- GET  /api/models/{repo}/tree/{rev}       -> the snapshot's files (recursive listing, one page)
- HEAD/GET /{repo}/resolve/{rev}/{path}    -> the file, with X-Repo-Commit and ETag
- HEAD /                                    -> 200 (services.common.hub's reachability probe)

Datasets are served the same way under /api/datasets/ and /datasets/{repo}/resolve/ (one namespace of
repo names for both kinds).

Branches move with `commit(repo, files)`, as a push to the real Hub would; every request is counted.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class LoopbackHub:
    def __init__(self) -> None:
        self.branches: dict[str, dict[str, str]] = {}  # repo -> branch -> sha
        self.snapshots: dict[str, dict[str, bytes]] = {}  # sha -> path -> content
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def commit(self, repo: str, files: dict[str, bytes], branch: str = "main") -> str:
        sha = hashlib.sha1(repr((repo, len(self.snapshots), sorted(files.items()))).encode()).hexdigest()
        self.snapshots[sha] = dict(files)
        self.branches.setdefault(repo, {})[branch] = sha
        return sha

    def commit_dir(self, repo: str, root: Path) -> str:
        return self.commit(repo, {str(p.relative_to(root)): p.read_bytes()
                                  for p in sorted(root.rglob("*")) if p.is_file()})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _sha(self, repo: str, rev: str) -> str | None:
        if rev in self.branches.get(repo, {}):
            return self.branches[repo][rev]
        return rev if rev in self.snapshots else None

    def _answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        self.requests.append(f"{h.command} {path}")
        # a dataset: the model routes, on the same repo names
        if path.startswith("/api/datasets/"):
            path = "/api/models/" + path[len("/api/datasets/"):]
        elif path.startswith("/datasets/"):
            path = path[len("/datasets"):]
        if path in ("", "/"):
            return self._send(h, 200, b"", {}, body)
        if path.startswith("/api/models/") and "/revision/" in path:
            repo, rev = path[len("/api/models/"):].split("/revision/", 1)
            sha = self._sha(repo, rev)
            if sha is None:
                return self._send(h, 404, b'{"error": "Revision Not Found"}',
                                  {"X-Error-Code": "RevisionNotFound"}, body)
            info = {"id": repo, "modelId": repo, "sha": sha,
                    "siblings": [{"rfilename": f} for f in sorted(self.snapshots[sha])]}
            return self._send(h, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        if path.startswith("/api/models/") and "/tree/" in path:
            repo, rev = path[len("/api/models/"):].split("/tree/", 1)
            sha = self._sha(repo, rev.split("/", 1)[0])
            if sha is None:
                return self._send(h, 404, b"", {"X-Error-Code": "RevisionNotFound"}, body)
            tree = [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for f, d in sorted(self.snapshots[sha].items())]
            return self._send(h, 200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
        if "/resolve/" in path:
            repo, rest = path.lstrip("/").split("/resolve/", 1)
            rev, _, name = rest.partition("/")
            sha = self._sha(repo, rev)
            data = self.snapshots.get(sha or "", {}).get(name)
            if data is None:
                return self._send(h, 404, b"", {"X-Error-Code": "EntryNotFound"}, body)
            return self._send(h, 200, data, {"X-Repo-Commit": sha or "",
                                             "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}, body)
        self._send(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str],
              body: bool) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if body:
            h.wfile.write(data)
