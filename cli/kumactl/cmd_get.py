"""`kumactl get <plural>` and `kumactl get <singular> NAME` (spec §6.3), one pair of commands per
type the registry marks for kumactl."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from cli.kumactl.app import App, pass_app
from cli.kumactl.client import collection_path, resource_path
from cli.kumactl.errors import ApiError, CliError, HttpError, failing
from cli.kumactl.output import (
    View,
    decode_resource,
    normalize_resource,
    output_option,
    print_objects,
)
from kuma.resources.dataplane import DataplaneSpec
from kuma.resources.mesh import MeshSpec
from kuma.resources.registry import DATAPLANE, MESH, TYPES, ResourceType


def _mesh_row(item: dict[str, Any]) -> Sequence[str]:
    res = decode_resource(item)
    spec: MeshSpec = res.spec
    metrics = "prometheus" if spec.metrics is not None and spec.metrics.prometheus else "off"
    return [res.name, "on" if spec.mtls_enabled else "off", spec.ca_kind, metrics]


def _dataplane_row(item: dict[str, Any]) -> Sequence[str]:
    res = decode_resource(item)
    spec: DataplaneSpec = res.spec
    return [res.mesh, res.name, spec.tags_string()]


def _policy_row(item: dict[str, Any]) -> Sequence[str]:
    res = decode_resource(item)
    return [res.mesh, res.name]


_VIEWS = {
    MESH: View(["NAME", "mTLS", "CA", "METRICS"], _mesh_row, normalize_resource),
    DATAPLANE: View(["MESH", "NAME", "TAGS"], _dataplane_row, normalize_resource),
}
_POLICY_VIEW = View(["MESH", "NAME"], _policy_row, normalize_resource)


def view_of(rtype: ResourceType) -> View:
    return _VIEWS.get(rtype.name, _POLICY_VIEW)


def not_found_message(rtype: ResourceType, mesh: str) -> str:
    """Kuma's wording for a singular get of a missing resource (0.5.0+)."""
    return "No resources found" if rtype.is_mesh else f"No resources found in {mesh} mesh"


def get_one(app: App, rtype: ResourceType, path: str) -> Any:
    """GET `path`, about one resource of `rtype`: a 404 is Kuma's "No resources found"."""
    try:
        return app.client().get_json(path)
    except (ApiError, HttpError) as exc:
        if exc.status == 404:
            raise CliError(not_found_message(rtype, app.mesh)) from None
        raise


def _list_command(rtype: ResourceType) -> click.Command:
    @click.command(name=rtype.kumactl_get, help=f"Show {rtype.kumactl_get}")
    @output_option
    @pass_app
    def command(app: App, output: str) -> None:
        client = app.client()
        with failing(f"failed to list {rtype.list_label}"):
            items = client.list_all(collection_path(rtype, app.mesh))
        print_objects(items, output, view_of(rtype))

    return command


def _single_command(rtype: ResourceType) -> click.Command:
    @click.command(name=rtype.kumactl_delete, help=f"Show a single {rtype.name} resource")
    @click.argument("name")
    @output_option
    @pass_app
    def command(app: App, name: str, output: str) -> None:
        item = get_one(app, rtype, resource_path(rtype, app.mesh, name))
        print_objects([item], output, view_of(rtype), single=True)

    return command


@click.group(name="get")
def get() -> None:
    """Show Kuma resources."""


for _rtype in TYPES:
    if _rtype.kumactl_get:
        get.add_command(_list_command(_rtype))
    if _rtype.kumactl_get and _rtype.kumactl_delete:
        get.add_command(_single_command(_rtype))
