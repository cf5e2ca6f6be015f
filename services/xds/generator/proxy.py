"""generate(): one dataplane's Envoy configuration from a mesh snapshot (spec §8.2-§8.4)."""

from __future__ import annotations

from services.xds.generator import proxyless, templates
from services.xds.generator.config import ProxyConfig
from services.xds.generator.context import Proxy, ProxyMetadata, build_proxy
from services.xds.generator.parts import Parts
from services.xds.generator.security import MtlsHook
from services.xds.generator.snapshot import MeshSnapshot


def generate(
    snapshot: MeshSnapshot,
    dataplane_name: str,
    metadata: ProxyMetadata | None = None,
    mtls: MtlsHook | None = None,
    parts: Parts | None = None,
) -> ProxyConfig:
    """Raise GenerationError when the dataplane's config cannot be built (the caller keeps the
    previous one). A dataplane missing from the snapshot gets an empty config (§8.1). With the
    mesh's `parts`, whatever was built before from the same inputs is taken from there."""
    dataplane = snapshot.dataplane(dataplane_name)
    if dataplane is None:
        return ProxyConfig()
    parts = parts if parts is not None else Parts()
    proxy = build_proxy(snapshot, dataplane, metadata or ProxyMetadata(), mtls, parts)
    return ProxyConfig.merge(*layers_of(proxy))


def layers_of(proxy: Proxy) -> templates.Layers:
    """The dataplane's config as the layers of parts it is made of (templates.Layers)."""
    if proxy.metadata.proxyless:
        return (ProxyConfig.of(proxyless.generate(proxy)),)
    template = proxy.parts.build(templates.select, proxy.dataplane, proxy.snapshot.proxy_templates)
    return templates.apply(template, proxy)
