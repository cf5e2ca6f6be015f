"""The worker service (DESIGN §3 "Housekeeping"): nameko over RabbitMQ.

Only `service.py` and `main.py` (its `run` path) import nameko, and with it eventlet. Everything
else here is plain Python that any process may import:
- `housekeeping`: start-up defaults and insight clean-up (plain functions);
- `inprocess`: the same jobs on a thread, for `kuma-cp run`;
- `client`: a kombu RPC client of `kuma_worker`, usable from any (non-eventlet) process;
- `settings`: the worker's KUMA_WORKER_* settings.
"""
