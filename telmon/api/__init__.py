"""The HTTP API (FastAPI): JSON under /api/v1, pages at /."""
