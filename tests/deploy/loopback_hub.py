"""A Hugging Face Hub stand-in on 127.0.0.1 speaking the few endpoints huggingface_hub needs to resolve
a revision and download a snapshot (HF_ENDPOINT=http://127.0.0.1:PORT):

- GET  /api/models/{repo}/revision/{rev}   -> {"id", "sha", "siblings"}
- GET  /api/models/{repo}/tree/{rev}       -> the snapshot's files (recursive listing, one page)
- HEAD/GET /{repo}/resolve/{rev}/{path}    -> the file, with X-Repo-Commit and ETag
- HEAD /                                    -> 200 (videophy_bench.common.hub's reachability probe)

Datasets are served the same way under /api/datasets/ and /datasets/{repo}/resolve/ (one namespace of
repo names for both kinds).

Branches move with `commit(repo, files)`, as a push to the real Hub would; every request is counted.

Uploads (what `HfApi.create_repo`, `create_branch` and `create_commit` send), recorded in `pushes`:

- POST /api/repos/create                         -> {"url"}; 409 when the repo exists
- POST /api/validate-yaml                        -> the README's YAML front matter parsed (400 if not)
- POST /api/{kind}s/{repo}/branch/{branch}       -> a branch from main; 409 when it exists
- POST /api/{kind}s/{repo}/preupload/{rev}       -> every file "regular" (inlined in the commit)
- POST /api/{kind}s/{repo}/commit/{rev}          -> the NDJSON commit applied to the branch

With `token` set, a request without `Authorization: Bearer <token>` is answered 401 (as the Hub
answers a bad token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Push:
    """One commit that arrived: its repo, branch, header and files (path -> bytes)."""

    repo: str
    branch: str
    summary: str
    files: dict[str, bytes] = field(default_factory=dict)
    sha: str = ""


class LoopbackHub:
    def __init__(self, token: str | None = None) -> None:
        self.branches: dict[str, dict[str, str]] = {}  # repo -> branch -> sha
        self.snapshots: dict[str, dict[str, bytes]] = {}  # sha -> path -> content
        self.requests: list[str] = []
        self.token = token
        self.created: list[dict] = []  # create_repo payloads
        self.pushes: list[Push] = []
        self.authorizations: list[str] = []  # every Authorization header received
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

            def do_POST(self) -> None:
                hub._post(self)

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

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(h.path).path)
        self.requests.append(f"POST {path}")
        data = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        auth = h.headers.get("Authorization") or ""
        self.authorizations.append(auth)
        if self.token is not None and auth != f"Bearer {self.token}":
            return self._json(h, 401, {"error": "Invalid credentials in Authorization header"})
        if path == "/api/repos/create":
            payload = json.loads(data)
            repo = "/".join(p for p in (payload.get("organization"), payload["name"]) if p)
            url = f"{self.url}/{'datasets/' if payload.get('type') == 'dataset' else ''}{repo}"
            if repo in self.branches:
                return self._json(h, 409, {"error": "You already created this repo", "url": url})
            self.created.append(payload)
            self.branches[repo] = {}
            return self._json(h, 200, {"url": url, "name": repo})
        if path == "/api/validate-yaml":
            import yaml

            content = json.loads(data)["content"]
            try:
                yaml.safe_load(content.split("---\n", 2)[1])
            except (IndexError, yaml.YAMLError) as exc:
                return self._json(h, 400, {"errors": [{"message": str(exc)}]})
            return self._json(h, 200, {"errors": [], "warnings": []})
        kind, _, rest = path.removeprefix("/api/").partition("s/")
        for action in ("/branch/", "/preupload/", "/commit/"):
            if action in rest:
                repo, rev = rest.split(action, 1)
                break
        else:
            return self._json(h, 404, {"error": "not found"})
        if repo not in self.branches:
            return self._send(h, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"},
                              True)
        if action == "/branch/":
            if rev in self.branches[repo]:
                return self._json(h, 409, {"error": "Branch already exists"})
            self.branches[repo][rev] = self.branches[repo].get("main", "")
            return self._json(h, 200, {})
        if action == "/preupload/":
            files = json.loads(data)["files"]
            return self._json(h, 200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                  "shouldIgnore": False} for f in files]})
        lines = [json.loads(line) for line in data.splitlines() if line.strip()]
        push = Push(repo, rev, lines[0]["value"]["summary"])
        for line in lines[1:]:
            if line["key"] != "file":  # lfsFile / deletions: never sent for "regular" files
                return self._json(h, 400, {"error": f"unsupported {line['key']}"})
            push.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        old = self.snapshots.get(self.branches[repo].get(rev, ""), {})
        push.sha = self.commit(repo, {**old, **push.files}, branch=rev)
        self.pushes.append(push)
        prefix = f"{self.url}/{kind}s" if kind != "model" else self.url
        return self._json(h, 200, {"commitUrl": f"{prefix}/{repo}/commit/{push.sha}", "commitOid": push.sha,
                                   "success": True})

    def _json(self, h: BaseHTTPRequestHandler, status: int, value: object) -> None:
        self._send(h, status, json.dumps(value).encode(), {"Content-Type": "application/json"}, True)

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
