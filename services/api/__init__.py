"""The API service (spec §4): Flask on 5681 under gunicorn, diagnostics on 5680.

`create_app(cfg, core)` is the composition root; `wsgi.py` builds it from config for gunicorn,
and `kuma-cp run` embeds it with `embedded_server.ThreadedWsgiServer`.
"""
