"""`python -m ctxgen` runs the command line."""

from .cli import app

app(prog_name="ctxgen")
