"""Why generation for one dataplane failed; the xDS server logs it and keeps the previous config."""

from __future__ import annotations

from kuma.errors import KumaError


class GenerationError(KumaError):
    details = "Envoy configuration could not be generated"
