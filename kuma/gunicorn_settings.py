"""gunicorn settings every HTTP service shares (API, bootstrap, injector): each service's
`gunicorn.conf.py` imports these and adds its binds, worker counts, log level and name."""

worker_class = "gthread"
preload_app = False  # each worker opens its own store pool after the fork
graceful_timeout = 10
keepalive = 5
accesslog = None
errorlog = "-"
# gunicorn >= 25 opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl):
# the services of one host would take it from each other, and $HOME may be read-only.
control_socket_disable = True


def worker_exit(server: object, worker: object) -> None:
    """Close the worker's store pool and feed (the app's `close`, when it has one)."""
    close = getattr(getattr(worker, "wsgi", None), "close", None)
    if close is not None:
        close()
