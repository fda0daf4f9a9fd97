"""Hugging Face Hub downloads that fail in seconds, in one line, when the Hub cannot be reached.

huggingface_hub retries a file it has not cached for about 23 s when the Hub does not answer. One quick
request first tells whether the Hub answers; when it does not, the download is asked of the cache
only, and a miss is a `HubUnavailable` whose message the caller completes with its way out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
PROBE_TIMEOUT_S = 5.0
WARM_CACHE_HINT = "or download it once where the Hub is reachable and set HF_HUB_OFFLINE=1"


class HubUnavailable(OSError):
    """The Hub cannot give what was asked (unreachable and not cached, unknown repo or revision)."""


def unreachable_reason(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hub does not answer now (None: it answered, whatever the status). One request, no retry."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout_s)
    except Exception as exc:  # any transport failure (refused, DNS, TLS, timeout) means "not reachable"
        return f"{constants.ENDPOINT}: {type(exc).__name__}: {exc}"
    return None


def fetch(what: str, download: Callable[..., T], **kwargs: Any) -> T:
    """`download(**kwargs)` (hf_hub_download, snapshot_download), from the cache only when the Hub does not
    answer; raises HubUnavailable naming `what` when it cannot be had."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    reason = unreachable_reason()
    if reason is not None:
        kwargs["local_files_only"] = True
    try:
        return download(**kwargs)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        cause = f"the Hub is unreachable ({reason})" if reason else "the Hub did not give it"
        raise HubUnavailable(f"{what}: {cause} and it is not in the Hugging Face cache") from exc
    except HfHubHTTPError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise HubUnavailable(f"{what}: {first}") from exc
