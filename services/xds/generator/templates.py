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
from services.xds.generator.context import Proxy
from services.xds.generator.errors import GenerationError

Profile = Callable[[Proxy], list[Message]]


def default_proxy(proxy: Proxy) -> list[Message]:
    return [
        *prometheus.generate(proxy),
        *transparent.generate(proxy),
        *inbound.generate(proxy),
        *outbound.generate(proxy),
    ]


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


def apply(template: Resource | None, proxy: Proxy) -> list[Message]:
    """The imported profiles' resources, then the raw ones: later resources override earlier ones
    of the same type and name when collected into a ProxyConfig."""
    spec: ProxyTemplateSpec = template.spec if template is not None else DEFAULT_TEMPLATE
    conf = spec.conf or ProxyTemplateConf()
    out: list[Message] = []
    for i, name in enumerate(conf.imports):
        profile = PROFILES.get(name)
        if profile is None:
            raise GenerationError(
                f'imports[{i}]{{name="{name}"}}: profile{{name="{name}"}}: unknown profile'
            )
        out.extend(profile(proxy))
    if template is not None:
        out.extend(proxy.parts.build(raw_resources, template))
    return out
