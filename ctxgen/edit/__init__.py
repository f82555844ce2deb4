"""`ctxgen edit`: a local web editor for scene files (FastAPI app + static page); see `create_app`."""
