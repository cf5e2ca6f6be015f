"""ProxyTemplate selection and application (spec §8.3) and the `default-proxy` profile (§8.4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from kuma.dataplane_policies import template_for
from kuma.resources.base import Resource
from kuma.resources.proxytemplate import (
    DEFAULT_PROFILE,
    ProxyTemplateConf,
    ProxyTemplateSpec,
    parse_envoy_resource,
)
from services.xds.generator import inbound, outbound, prometheus, transparent
from services.xds.generator.config import ProxyConfig
from services.xds.generator.context import Proxy, transparent_port
from services.xds.generator.errors import GenerationError
from services.xds.generator.parts import Parts
from services.xds.generator.security import MtlsHook

# A profile's config is layers, in the order a later one's resource replaces an earlier one's
# of the same type and name (ProxyConfig.merge): each layer is one of the mesh's parts, so that
# what a node is sent is found by which parts it is made of (ads.cache.Packer.answer_of).
Layers = tuple[ProxyConfig, ...]
Profile = Callable[[Proxy], Layers]


def default_proxy(proxy: Proxy) -> Layers:
    """What is the dataplane's own (inbound, Prometheus, transparent proxying: unchanged by
    policy changes), then its outbound side (shared by dataplanes of one side)."""
    parts = proxy.parts
    own = parts.build(
        own_config,
        parts,
        proxy.snapshot.mesh,
        proxy.dataplane,
        proxy.metadata.admin_port,
        proxy.mtls,
    )
    return (own, *outbound.config(proxy))


def own_config(
    parts: Parts, mesh: Resource, dataplane: Resource, admin_port: int, mtls: MtlsHook | None
) -> ProxyConfig:
    return ProxyConfig.of(
        [
            *parts.build(prometheus.build, mesh, dataplane, admin_port),
            *parts.build(transparent.build, transparent_port(dataplane.spec)),
            *inbound.resources(parts, dataplane, mtls),
        ]
    )


PROFILES: dict[str, Profile] = {DEFAULT_PROFILE: default_proxy}
DEFAULT_TEMPLATE = ProxyTemplateSpec(conf=ProxyTemplateConf(imports=[DEFAULT_PROFILE]))


def select(dataplane: Resource, templates: Sequence[Resource]) -> Resource | None:
    """The template that configures `dataplane` (None: the default one), as the API reports it."""
    return template_for(dataplane.spec, templates)


def raw_resources(template: Resource) -> list[Message]:
    """A template's own resources, parsed once for every dataplane it applies to."""
    out: list[Message] = []
    for j, raw in enumerate((template.spec.conf or ProxyTemplateConf()).resources):
        try:
            out.append(parse_envoy_resource(raw.resource))
        except ValueError as exc:
            raise GenerationError(f'resources[{j}]{{name="{raw.name}"}}: {exc}') from None
    return out


def apply(template: Resource | None, proxy: Proxy) -> Layers:
    """The imported profiles' layers, then the raw resources: later resources override earlier
    ones of the same type and name (§8.3)."""
    spec: ProxyTemplateSpec = template.spec if template is not None else DEFAULT_TEMPLATE
    conf = spec.conf or ProxyTemplateConf()
    layers: list[ProxyConfig] = []
    for i, name in enumerate(conf.imports):
        profile = PROFILES.get(name)
        if profile is None:
            raise GenerationError(
                f'imports[{i}]{{name="{name}"}}: profile{{name="{name}"}}: unknown profile'
            )
        layers.extend(profile(proxy))
    if template is not None:
        layers.append(proxy.parts.build(raw_config, template))
    return tuple(layers)


def raw_config(template: Resource) -> ProxyConfig:
    return ProxyConfig.of(raw_resources(template))
