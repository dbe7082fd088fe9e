"""telmon: a telemetry monitor for station files, transfer logs and pushed metrics."""

__version__ = "0.1.0"
