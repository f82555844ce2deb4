"""Stage 6, outputs: folder naming, the idempotency key and PNG metadata, debug overlays, render comparison."""
