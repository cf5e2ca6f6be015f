"""The edge every service shares: servers (gunicorn, waitress, cheroot), the command line
(click), the worker's RPC client (kombu), and the WSGI pieces they serve (diagnostics, request
metrics). The rest of `kuma/` is the framework-free core (tests/unit/test_layering.py)."""
