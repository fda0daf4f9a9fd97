"""Exit codes of `videophy-bench run`, and which of them are final.

A batch system that retries the orchestrator (the Kubernetes Job's `podFailurePolicy`,
k8s/base/orchestrator-job.yaml) fails the run at once on a FINAL code and retries every other one;
tests/deploy checks that the Job's FailJob rule lists exactly FINAL.
"""

from __future__ import annotations

import signal

OK = 0
FAILED = 1  # runtime failure (no replica became ready, a local service died, a bug): a retry may help
USAGE = 2  # usage or configuration error (bad arguments, changed configuration, corrupt ledger)
LOCKED = 75  # EX_TEMPFAIL: another orchestrator still holds the run directory after --lock-wait-s
SIGINT = 128 + signal.SIGINT  # 130: stopped by Ctrl-C after draining
SIGTERM = 128 + signal.SIGTERM  # 143: stopped by SIGTERM (a pod stop) after draining

# Retrying the same command cannot change the outcome of these.
FINAL = frozenset({USAGE})
