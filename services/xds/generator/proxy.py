"""generate(): one dataplane's Envoy configuration from a mesh snapshot (spec §8.2-§8.4)."""

from __future__ import annotations

from services.xds.generator import proxyless, templates
from services.xds.generator.config import ProxyConfig
from services.xds.generator.context import ProxyMetadata, build_proxy
from services.xds.generator.memo import PartMemo
from services.xds.generator.security import MtlsHook
from services.xds.generator.snapshot import MeshSnapshot


def generate(
    snapshot: MeshSnapshot,
    dataplane_name: str,
    metadata: ProxyMetadata | None = None,
    mtls: MtlsHook | None = None,
    memo: PartMemo | None = None,
) -> ProxyConfig:
    """Raise GenerationError when the dataplane's config cannot be built (the caller keeps the
    previous one). A dataplane missing from the snapshot gets an empty config (§8.1). With the
    dataplane's `memo`, parts whose inputs did not change are taken from its last generation."""
    dataplane = snapshot.dataplane(dataplane_name)
    if dataplane is None:
        return ProxyConfig()
    proxy = build_proxy(snapshot, dataplane, metadata or ProxyMetadata(), mtls, memo)
    if proxy.metadata.proxyless:
        return ProxyConfig.of(proxyless.generate(proxy))
    template = templates.select(proxy, snapshot.proxy_templates)
    return ProxyConfig.of(templates.apply(template, proxy))
