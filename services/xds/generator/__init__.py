"""Pure Envoy v3 config generation: (mesh snapshot, dataplane name) -> ProxyConfig.

No I/O and no store access: the xDS server builds a MeshSnapshot per mesh revision and calls
`generate` for each connected dataplane of that mesh.
"""

from services.xds.generator.config import ProxyConfig
from services.xds.generator.context import ProxyMetadata
from services.xds.generator.errors import GenerationError
from services.xds.generator.proxy import generate
from services.xds.generator.security import InboundSecurity, MtlsHook
from services.xds.generator.snapshot import Endpoint, MeshSnapshot

__all__ = [
    "Endpoint",
    "GenerationError",
    "InboundSecurity",
    "MeshSnapshot",
    "MtlsHook",
    "ProxyConfig",
    "ProxyMetadata",
    "generate",
]
