"""gunicorn settings every HTTP service shares (API, bootstrap, injector): each service's
`gunicorn.conf.py` imports these and adds its binds, worker counts and name. The logging is
kuma.logs's, at the level the command line chose (`kuma.edge.gunicorn_app.serve` hands it on)."""

import multiprocessing

from kuma import logs

worker_class = "gthread"
preload_app = False  # each worker opens its own store pool after the fork
graceful_timeout = 10
keepalive = 5
accesslog = None
errorlog = "-"
logconfig_dict = logs.config_dict(logs.current_level())
# gunicorn >= 25 opens a control socket at one path per user ($HOME/.gunicorn/gunicorn.ctl):
# the services of one host would take it from each other, and $HOME may be read-only.
control_socket_disable = True


def processes(workers: int) -> int:
    """A service's `workers` key as gunicorn's `workers`: 0 means one per CPU."""
    return workers or multiprocessing.cpu_count()


def worker_exit(server: object, worker: object) -> None:
    """Close the worker's store pool and feed (the app's `close`, when it has one)."""
    close = getattr(getattr(worker, "wsgi", None), "close", None)
    if close is not None:
        close()


def child_exit(server: object, worker: object) -> None:
    """In the master: the worker is gone; its live gauges leave `/metrics` (`kuma.prom`)."""
    from kuma import prom

    prom.worker_exited(getattr(worker, "pid", 0))
