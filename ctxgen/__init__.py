"""ctxgen: ContextGen multi-instance generation on FLUX.1-Kontext (ICLR 2026)."""

__version__ = "0.1.0"
