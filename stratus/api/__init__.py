"""stratus-api: Compute API v2.1, Identity v3 and Image v2 over WSGI."""
