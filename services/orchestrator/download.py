"""Fetch videos over HTTP(S) into the storage root (httpx2, tenacity).

Contract of `Downloader.fetch(url, uri)`:
- bounded: at most `concurrency` transfers at once (one semaphore per downloader);
- resumable: bytes land in `<uri>.part`; a later attempt (or a later session) asks for the rest with
  `Range: bytes=N-` and `If-Range` (the ETag or Last-Modified of the response that began the part,
  kept in `<uri>.part.json`), and appends only when the server honoured it: a 206 whose
  `Content-Range` starts at N. A 200 (no resume support, or the file changed) starts the part over;
  a 206 at another offset is refused and the part dropped;
- retried with backoff (tenacity, exponential plus jitter) on timeouts, dropped or refused
  connections, a body cut short, 408, 429 and 5xx; never on 404 or any other 4xx, a video over the
  size cap (`max_bytes`: from Content-Length or Content-Range before the body is read, and counted
  while it streams), or a full disk (`DiskFull`: ENOSPC/EDQUOT, which fails at once);
- checksummed and atomic: the finished part is fsynced, its sha256 computed and renamed onto `uri`;
  nothing is ever written at `uri` but a complete body. The caller decodes it before judging.

Every failure is a `DownloadFailed` with one line of reason; the caller records it per item.
`uri` is a storage-root URI (the caller builds it from safe components, never from the URL);
`Storage.resolve` refuses anything that leaves the root.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from videophy_bench.common.storage import FILE_MODE, Storage, sha256_file
from videophy_bench.orchestrator.run_options import DownloadOptions

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
PART_META_SUFFIX = ".part.json"
USER_AGENT = "videophy-bench (+https://videophy2.github.io)"
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_RETRIED_STATUS = frozenset({408, 425, 429})


class DownloadFailed(Exception):
    """The video cannot be fetched (now); `str()` is the one-line reason recorded for the item."""


class DiskFull(DownloadFailed):
    """The storage root's disk (or quota) is full: no further download can succeed."""


class _Transient(DownloadFailed):
    """Worth another attempt (a 5xx, a body cut short, ...)."""


@dataclass(frozen=True)
class Fetched:
    uri: str
    sha256: str
    size: int
    resumed_from: int  # bytes already on disk (from an earlier attempt or session) when the last one began
    attempts: int
    seconds: float


def _disk_error(exc: OSError, path: Path) -> DownloadFailed:
    if exc.errno in _DISK_FULL:
        return DiskFull(f"no space left on the storage root's disk writing {path} "
                        f"({os.strerror(exc.errno)}); free space and rerun the same command (finished "
                        "downloads are kept)")
    return DownloadFailed(f"cannot write {path}: {exc.strerror or exc}")


def _validator(headers: httpx2.Headers) -> str:
    """What If-Range can name: a strong ETag, else Last-Modified ("" when neither)."""
    etag = headers.get("etag", "")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("last-modified", "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx2.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class Downloader:
    """One HTTP client (connection pool) and one concurrency bound for a run's downloads."""

    def __init__(self, storage: Storage, options: DownloadOptions | None = None) -> None:
        self.storage = storage
        self.opts = options or DownloadOptions()
        self._slots = asyncio.Semaphore(max(1, self.opts.concurrency))
        timeout = httpx2.Timeout(self.opts.timeout_s)
        self._client = httpx2.AsyncClient(
            timeout=timeout,
            follow_redirects=True,
            max_redirects=10,
            limits=httpx2.Limits(max_connections=max(1, self.opts.concurrency)),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},  # byte offsets = file offsets
            trust_env=True,  # HTTPS_PROXY and friends, as every other client here
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Downloader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- one video ---------------------------------------------------------------------------------
    async def fetch(self, url: str, uri: str) -> Fetched:
        """Download `url` to the storage URI `uri` (see the module contract); raises DownloadFailed."""
        final = self.storage.resolve(uri)
        part = self.storage.resolve(uri + PART_SUFFIX)
        t0 = time.monotonic()
        attempts = 0
        resumed_from = 0
        async with self._slots:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(max(1, self.opts.attempts)),
                wait=wait_exponential(multiplier=self.opts.backoff_initial_s, max=self.opts.backoff_max_s)
                + wait_random(0, self.opts.backoff_initial_s),
                retry=retry_if_exception_type(_Transient),
                reraise=True,
                before_sleep=lambda state: log.info(
                    "download %s: attempt %d failed (%s); retrying", url, state.attempt_number,
                    state.outcome.exception() if state.outcome else "?"),
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        resumed_from = await self._attempt(url, part)
            except _Transient as exc:
                raise DownloadFailed(f"{exc} (after {attempts} attempts)") from None
        sha, size = await asyncio.to_thread(self._finish, part, final)
        return Fetched(uri, sha, size, resumed_from, attempts, time.monotonic() - t0)

    @staticmethod
    def _read_meta(part: Path) -> dict[str, Any]:
        try:
            data = json.loads(_meta_of(part).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _start_part(self, part: Path, url: str, validator: str) -> int:
        """Open a fresh part (truncating an old one) and remember what began it; returns its fd."""
        part.parent.mkdir(parents=True, exist_ok=True)
        meta = _meta_of(part)
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_text(json.dumps({"url": url, "validator": validator}))
        os.replace(tmp, meta)
        return os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)

    async def _attempt(self, url: str, part: Path) -> int:
        """One GET into `part`; returns the bytes it resumed from. Raises _Transient or DownloadFailed."""
        try:
            have = part.stat().st_size if part.is_file() and not part.is_symlink() else 0
        except OSError:
            have = 0
        meta = self._read_meta(part) if have else {}
        headers = {}
        if have and meta.get("url") == url:
            headers["Range"] = f"bytes={have}-"
            if meta.get("validator"):
                headers["If-Range"] = meta["validator"]
        else:
            have = 0
        try:
            async with self._client.stream("GET", url, headers=headers) as resp:
                return await self._receive(url, part, resp, have)
        except (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
            raise _Transient(_describe(exc)) from None
        except (httpx2.TooManyRedirects, httpx2.UnsupportedProtocol, httpx2.InvalidURL,
                httpx2.LocalProtocolError, httpx2.ProxyError) as exc:
            raise DownloadFailed(_describe(exc)) from None

    async def _receive(self, url: str, part: Path, resp: httpx2.Response, have: int) -> int:
        code = resp.status_code
        if code == 416 and have:
            # The part may already be whole (a session stopped between the last byte and the rename).
            match = re.match(r"^\s*bytes\s+\*/(\d+)\s*$", resp.headers.get("content-range", ""))
            if match and int(match.group(1)) == have:
                return have
            self._drop(part)
            raise _Transient(f"HTTP 416 for bytes={have}- (the remote file changed); starting over")
        if code >= 500 or code in _RETRIED_STATUS:
            raise _Transient(f"HTTP {code} {resp.reason_phrase}")
        if code not in (200, 206):
            raise DownloadFailed(f"HTTP {code} {resp.reason_phrase} for {url}")
        start, total = 0, resp.headers.get("content-length")
        expected = int(total) if total and total.isdigit() else None
        if code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("content-range", ""))
            if match is None or int(match.group(1)) != have:
                self._drop(part)
                got = resp.headers.get("content-range", "none")
                raise _Transient(f"the server answered bytes={have}- with Content-Range {got!r}; "
                                 "starting over")
            start = have
            expected = None if match.group(3) == "*" else int(match.group(3))
        elif have:  # a 200: Content-Length is the whole file
            log.info("download %s: the server ignored Range (no resume support, or the file changed): "
                     "fetching all of it again", url)
        size_cap = self.opts.max_bytes
        if expected is not None and expected > size_cap:
            self._drop(part)
            raise DownloadFailed(f"{expected} bytes, over the size cap of {size_cap} bytes (--max-video-mb)")
        try:
            if start:
                fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            else:
                fd = self._start_part(part, url, _validator(resp.headers))
        except OSError as exc:
            raise _disk_error(exc, part) from None
        written = start
        try:
            async for chunk in resp.aiter_raw():  # as received: a part on disk is what arrived
                written += len(chunk)
                if written > size_cap:
                    raise DownloadFailed(f"over the size cap of {size_cap} bytes (--max-video-mb)")
                view = memoryview(chunk)
                while view:  # unbuffered: what was received is on disk if the process dies
                    view = view[os.write(fd, view):]
        except OSError as exc:
            raise _disk_error(exc, part) from None
        except DownloadFailed:
            os.close(fd)
            fd = -1
            self._drop(part)
            raise
        finally:
            if fd >= 0:
                os.close(fd)
        if expected is not None and written != expected:
            raise _Transient(f"body ended after {written} of {expected} bytes")
        if written == 0:
            raise DownloadFailed(f"empty body (HTTP {code}) for {url}")
        return start

    def _drop(self, part: Path) -> None:
        part.unlink(missing_ok=True)
        _meta_of(part).unlink(missing_ok=True)

    def _finish(self, part: Path, final: Path) -> tuple[str, int]:
        """Worker thread: fsync, sha256 and rename the whole part onto `final`."""
        try:
            fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            sha = sha256_file(part)
            size = part.stat().st_size
            os.chmod(part, FILE_MODE)
            os.replace(part, final)
        except OSError as exc:
            raise _disk_error(exc, final) from None
        _meta_of(part).unlink(missing_ok=True)
        return sha, size


def _meta_of(part: Path) -> Path:
    """`<uri>.part.json` beside `<uri>.part`: the URL and validator that began the part."""
    return part.with_name(part.name[: -len(PART_SUFFIX)] + PART_META_SUFFIX)
