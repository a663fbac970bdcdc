"""Generated at build time from proto/capsight/v1 (see setup.py)."""
