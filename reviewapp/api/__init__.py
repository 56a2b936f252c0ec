"""The REST API (/api/): reads stored rows only; POSTs call the same services as the web UI."""
