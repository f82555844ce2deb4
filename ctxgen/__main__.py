"""`python -m ctxgen` runs the command line."""

from ctxgen.cli import app

app(prog_name="ctxgen")
