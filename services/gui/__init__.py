"""The GUI (spec §12.4, port 5683): server-rendered pages over the API, which it also serves
read-only under its own origin at `/api`. It is an HTTP client of the API and nothing else: no
store, no change feed, no admin token."""
