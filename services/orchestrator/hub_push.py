"""`videophy-bench push RUN --repo ID`: a run's results as a Hugging Face Hub dataset repo.

Uploads results.csv, results.json, summary.json, manifest.json, prompts.csv, official/ and the report
folder (when there is one), plus a generated dataset card (dataset_card.py), in one commit through
huggingface_hub (create_repo, then create_commit). The videos only with --include-videos. The token
comes from --token-file, HF_TOKEN or `hf auth login`, and is never printed; HF_ENDPOINT points
elsewhere than huggingface.co.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from videophy_bench.common.arguments import Parser
from videophy_bench.common.entry import configure_logging, one_line

USAGE_ERROR = 2
RUNTIME_FAILURE = 1
NAME = "videophy-bench push"
REPORT_DIR = "report"  # the report folder's default place in a run directory, and in the repo


class PushError(Exception):
    """One line for the user; `usage` when it is the input's fault (exit 2), else a runtime failure."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def _parser() -> Parser:
    p = Parser(prog=NAME, description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, metavar="RUN", help="run directory")
    p.add_argument("--repo", required=True, metavar="ID", help="dataset repo id (user/name or org/name); "
                   "created when missing")
    p.add_argument("--include-videos", action="store_true", help="also upload videos/ (large)")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help=f"report folder to upload under {REPORT_DIR}/ (default: RUN/{REPORT_DIR} when "
                   "present)")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps "
                   "its visibility)")
    p.add_argument("--revision", "--branch", dest="revision", default=None, metavar="BRANCH",
                   help="commit to this branch (created from main when missing; default: main)")
    p.add_argument("--license", default="unknown", metavar="ID",
                   help="the card's license (a Hub license id such as mit or cc-by-4.0; default: unknown)")
    p.add_argument("--message", default=None, help="commit message (default: names the run)")
    p.add_argument("--token-file", default=None, metavar="PATH",
                   help="file holding the Hub token (default: HF_TOKEN, or the token of `hf auth login`)")
    p.add_argument("--log-level", default="WARNING", help="DEBUG also shows tracebacks")
    return p


def _token(token_file: str | None) -> str:
    from huggingface_hub import get_token

    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PushError(f"--token-file {token_file}: {exc.strerror or exc}", usage=True) from None
        if not token:
            raise PushError(f"--token-file {token_file} is empty", usage=True)
        return token
    token = get_token()
    if not token:
        raise PushError("no Hub token: set HF_TOKEN, give --token-file PATH, or run `hf auth login`",
                        usage=True)
    return token


def upload_files(run_dir: Path, report: Path | None, include_videos: bool) -> dict[str, Path | bytes]:
    """Repo path -> local file (or content) of everything to upload, the card aside: the same results
    files as a tracker gets, the manifest with its command lines redacted."""
    from videophy_bench.orchestrator.tracking.record import result_files

    files = result_files(run_dir)
    folders = []
    if report is None and (run_dir / REPORT_DIR).is_dir():
        report = run_dir / REPORT_DIR
    if report is not None:
        folders.append((report, REPORT_DIR))
    if include_videos:
        folders.append((run_dir / "videos", "videos"))
    for root, prefix in folders:
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.is_symlink():
                files[f"{prefix}/{p.relative_to(root).as_posix()}"] = p
    return files


def _http_line(exc: Exception, endpoint: str) -> PushError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return PushError(f"{endpoint} refused the token ({status}): check HF_TOKEN / --token-file and "
                         "that it may write to the repo")
    return PushError(f"{endpoint}: {one_line(exc)}")


def push(run_dir: Path, repo: str, *, token: str, report: Path | None = None, include_videos: bool = False,
         private: bool = False, revision: str | None = None, license_id: str = "unknown",
         message: str | None = None) -> str:
    """Upload; returns the commit's URL. Raises PushError (one line)."""
    from huggingface_hub import CommitOperationAdd, HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from videophy_bench.orchestrator.dataset_card import card_text

    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise PushError(f"--repo {repo}: {one_line(exc)}", usage=True) from None
    if report is not None and not report.is_dir():
        raise PushError(f"--report {report} is not a directory", usage=True)
    if include_videos and not (run_dir / "videos").is_dir():
        raise PushError(f"--include-videos: {run_dir} has no videos/ folder", usage=True)
    from videophy_bench.orchestrator.ledger import LedgerCorrupt
    from videophy_bench.orchestrator.tracking.record import refresh_exports

    try:
        note = refresh_exports(run_dir)  # the numbers pushed are the ledger's
    except LedgerCorrupt as exc:
        raise PushError(str(exc), usage=True) from None
    if note:
        print(f"{NAME}: warning: {note}", file=sys.stderr)
    results = run_dir / "results.json"
    if not results.is_file():
        raise PushError(f"{run_dir}: no results.json (not a run directory, or made before results.json "
                        "existed: `videophy-bench status RUN` rewrites the exports)", usage=True)
    doc = json.loads(results.read_text(encoding="utf-8"))
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else None
    files = upload_files(run_dir, report, include_videos)
    card = card_text(doc, sorted({p.split("/", 1)[0] + ("/" if "/" in p else "") for p in files}),
                     license_id, manifest)
    operations = [CommitOperationAdd("README.md", card.encode("utf-8"))]
    operations += [CommitOperationAdd(path, local if isinstance(local, bytes) else str(local))
                   for path, local in sorted(files.items())]
    endpoint = constants.ENDPOINT
    api = HfApi(endpoint=endpoint, token=token)
    try:
        # Not private: the Hub's default for the namespace (an organization may default to private).
        api.create_repo(repo, repo_type="dataset", private=True if private else None, exist_ok=True)
        if revision and revision != constants.DEFAULT_REVISION:
            api.create_branch(repo, branch=revision, repo_type="dataset", exist_ok=True)
        info = api.create_commit(
            repo, operations, repo_type="dataset", revision=revision,
            commit_message=message or f"videophy-bench results of {doc.get('run', {}).get('name')}",
        )
    except HfHubHTTPError as exc:
        raise _http_line(exc, endpoint) from None
    except OSError as exc:  # refused, DNS, TLS, timeouts (httpx's transport errors are OSErrors too)
        raise PushError(f"cannot reach {endpoint}: {one_line(exc)}") from None
    except Exception as exc:
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise PushError(f"cannot reach {endpoint}: {type(exc).__name__}: {one_line(exc)}") from None
        raise
    return str(info.commit_url)


def push_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        if not args.run_dir.is_dir():
            raise PushError(f"{args.run_dir} is not a directory", usage=True)
        url = push(args.run_dir, args.repo, token=_token(args.token_file), report=args.report,
                   include_videos=args.include_videos, private=args.private, revision=args.revision,
                   license_id=args.license, message=args.message)
    except PushError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return USAGE_ERROR if exc.usage else RUNTIME_FAILURE
    print(f"pushed {args.run_dir} to {url}")
    return 0
