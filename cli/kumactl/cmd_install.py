"""`kumactl install control-plane` and `kumactl install database-schema` (spec §6.10)."""

from __future__ import annotations

from typing import Any

import click

from cli.kumactl import manifests, tls
from cli.kumactl.errors import CliError
from kuma import version as build

# The images the Dockerfile builds: `docker build -t kuma-py:<version> --target control-plane .`
# and `-t kuma-py-dp:<version> --target kuma-dp`. No init image is built here (README, Kubernetes).
CONTROL_PLANE_IMAGE = "kuma-py"
DATAPLANE_IMAGE = "kuma-py-dp"
DATAPLANE_INIT_IMAGE = "kuma-py-init"


def _pair(component: str, cert: str, key: str, cn: str, hosts: list[str]) -> tls.KeyPair:
    """The given PEM pair, or a fresh self-signed one when both are empty."""
    if bool(cert) != bool(key):
        raise CliError(f"{component}: both TLS Cert and TLS Key must be provided at the same time")
    if cert:
        return tls.KeyPair(cert.encode(), key.encode())
    return tls.self_signed(cn, "server", hosts)


def _svc_hosts(name: str, namespace: str) -> list[str]:
    return [f"{name}.{namespace}.svc", f"{name}.{namespace}", name]


@click.group(name="install")
def install() -> None:
    """Install Kuma on Kubernetes."""


@install.command(name="control-plane")
@click.option("--namespace", default="kuma-system", show_default=True)
@click.option("--image-pull-policy", default="IfNotPresent", show_default=True)
@click.option("--control-plane-version", default=build.version, show_default="kumactl's version")
@click.option("--control-plane-image", default=CONTROL_PLANE_IMAGE, show_default=True)
@click.option("--control-plane-service-name", default="kuma-control-plane", show_default=True)
@click.option("--injector-service-name", default="kuma-injector", show_default=True)
@click.option(
    "--injector-failure-policy",
    type=click.Choice(["Ignore", "Fail"]),
    default="Ignore",
    show_default=True,
)
@click.option("--injector-tls-cert", default="", help="PEM certificate of the injector")
@click.option("--injector-tls-key", default="", help="PEM key of the injector")
@click.option("--sds-tls-cert", default="", help="PEM certificate of the SDS server")
@click.option("--sds-tls-key", default="", help="PEM key of the SDS server")
@click.option("--dataplane-image", default=DATAPLANE_IMAGE, show_default=True)
@click.option(
    "--dataplane-init-image",
    default=DATAPLANE_INIT_IMAGE,
    show_default=True,
    help="istio-iptables style init image (not built by this project's Dockerfile)",
)
@click.option("--xds-replicas", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--postgres-host", default="postgres", show_default=True)
@click.option("--postgres-port", type=click.IntRange(1, 65535), default=5432, show_default=True)
@click.option("--postgres-user", default="kuma", show_default=True)
@click.option("--postgres-password", default="kuma", show_default=True)
@click.option("--postgres-db", default="kuma", show_default=True)
@click.option(
    "--postgres-tls-mode",
    type=click.Choice(["disable", "verifyNone", "verifyCa", "verifyFull"]),
    default="disable",
    show_default=True,
)
@click.option("--redis-url", default="redis://redis:6379/0", show_default=True)
@click.option("--rabbitmq-url", default="amqp://guest:guest@rabbitmq:5672/", show_default=True)
def control_plane(
    sds_tls_cert: str,
    sds_tls_key: str,
    injector_tls_cert: str,
    injector_tls_key: str,
    **settings: Any,
) -> None:
    """Install the Kuma Control Plane on Kubernetes: prints the manifests."""
    ns = settings["namespace"]
    xds = f"{settings['control_plane_service_name']}-xds"
    injector = settings["injector_service_name"]
    options = manifests.InstallOptions(
        **settings,
        sds_tls=_pair("SDS", sds_tls_cert, sds_tls_key, f"{xds}.{ns}.svc", _svc_hosts(xds, ns)),
        injector_tls=_pair(
            "Injector",
            injector_tls_cert,
            injector_tls_key,
            f"{injector}.{ns}.svc",
            _svc_hosts(injector, ns),
        ),
    )
    click.echo(manifests.render(manifests.control_plane(options)), nl=False)


@install.command(name="database-schema")
@click.option("--target", default="postgres", show_default=True, help="database type")
def database_schema(target: str) -> None:
    """Print the SQL of the Postgres store's migrations, in order."""
    if target != "postgres":
        raise CliError(f"unknown target type: {target}")
    from kuma.store.migrate import migrations

    for migration in migrations():
        click.echo(f"-- {migration.name}.sql")
        click.echo(migration.sql.rstrip("\n"))
