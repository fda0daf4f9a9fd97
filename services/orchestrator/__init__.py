"""The orchestrator: the `videophy-bench` CLI (prompt sets, dispatch, ledger, local runs, exports)."""
