"""`kumactl apply [-f FILE|-|URL] [-v key=value ...] [--dry-run]` (spec §6.5), multi-document.

Every document is checked locally first (shape, names, the type's rules from the registry); if any
is invalid nothing is sent and every problem is listed with its document number. Then each
resource is PUT in file order; the server decides create (201) or update (200).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import click
import requests
import yaml

from cli.kumactl import template
from cli.kumactl.app import App, pass_app
from cli.kumactl.client import SHORT_TIMEOUT, resource_path, transport_error
from cli.kumactl.errors import ApiError, CliError
from kuma.decode import load_yaml_documents
from kuma.errors import ValidationError, Violation
from kuma.manager import MAX_NAME_LENGTH
from kuma.resources import mesh as mesh_rules
from kuma.resources import wire
from kuma.resources.base import Resource
from kuma.resources.registry import MESH, get_type, validate_spec

INVALID = "YAML contains invalid resource"


@dataclass
class Document:
    number: int  # 1-based position in the input, empty documents counted
    resource: Resource | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.resource is None:
            return f"document {self.number}"
        return f'document {self.number} ({self.resource.type} "{self.resource.name}")'


def read_input(source: str | None) -> str:
    if source is None or source == "-":
        return sys.stdin.read()
    if source.startswith(("http://", "https://")):
        try:
            response = requests.get(source, timeout=SHORT_TIMEOUT)
        except requests.RequestException as exc:
            raise CliError(
                f"error while retrieving URL: {transport_error('GET', source, exc).message}"
            ) from None
        if response.status_code != 200:
            raise CliError(
                f"error while retrieving URL {source}: status code {response.status_code}"
            )
        return response.text
    try:
        with open(source, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"error while reading provided file: {exc.strerror}: {source}") from None


def _meta(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key, "")
    return value if isinstance(value, str) else ""


def _shape_problem(obj: Any) -> str | None:
    """Kuma's checks, in Kuma's order: name, mesh, type (spec §6.5)."""
    if not isinstance(obj, dict):
        return "a resource must be a YAML mapping"
    if not _meta(obj, "name"):
        return "Name field cannot be empty"
    if not _meta(obj, "mesh") and _meta(obj, "type") != MESH:
        return "Mesh field cannot be empty"
    try:
        if get_type(_meta(obj, "type")).plural is None:
            raise ValidationError()
    except ValidationError:
        return "invalid type of resource type"
    return None


def _rule_problems(resource: Resource) -> list[str]:
    """What the API would reject: name characters and length, then the type's own rules."""
    violations = wire.name_violations("name", resource.name)
    if resource.type != MESH:
        violations += wire.name_violations("mesh", resource.mesh)
    if len(resource.name) > MAX_NAME_LENGTH:
        violations.append(Violation("name", f"must be at most {MAX_NAME_LENGTH} characters long"))
    spec = mesh_rules.apply_defaults(resource.spec) if resource.type == MESH else resource.spec
    try:
        validate_spec(resource.type, spec)
    except ValidationError as exc:
        violations += exc.violations
    return [f"{v.field}: {v.message}" for v in violations]


def check_document(number: int, obj: Any) -> Document:
    doc = Document(number)
    problem = _shape_problem(obj)
    if problem is not None:
        doc.problems.append(problem)
        return doc
    try:
        doc.resource = wire.from_json(obj)
    except ValidationError as exc:
        doc.problems = [f"{v.field}: {v.message}" for v in exc.violations] or [exc.details]
        return doc
    doc.problems = _rule_problems(doc.resource)
    return doc


def parse_documents(text: str) -> list[Document]:
    try:
        raw = load_yaml_documents(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise CliError(f"{INVALID}: " + " ".join(str(exc).split())) from None
    docs = [check_document(i, obj) for i, obj in enumerate(raw, start=1) if obj is not None]
    if not docs:
        raise CliError(f"{INVALID}: the input has no YAML document")
    return docs


def invalid_message(docs: list[Document]) -> str | None:
    bad = [d for d in docs if d.problems]
    if not bad:
        return None
    if len(docs) == 1:
        (problems,) = [d.problems for d in bad]
        if len(problems) == 1:
            return f"{INVALID}: {problems[0]}"
        return f"{INVALID}: Resource is not valid\n" + "\n".join(f"* {p}" for p in problems)
    head = (
        f"{len(bad)} of {len(docs)} YAML documents contain invalid resources; nothing was applied"
    )
    return "\n".join([head] + [f"* {d.label}: {p}" for d in bad for p in d.problems])


def _upload(app: App, docs: list[Document]) -> None:
    client = app.client()
    for i, doc in enumerate(docs):
        assert doc.resource is not None
        res = doc.resource
        path = resource_path(get_type(res.type), res.mesh, res.name)
        try:
            client.put_json(path, wire.to_json(res))
        except CliError as exc:
            if len(docs) == 1:
                raise
            applied = ", ".join(str(d.number) for d in docs[:i]) or "none"
            message = (
                exc.message if isinstance(exc, ApiError) else f"failed to apply: {exc.message}"
            )
            raise CliError(
                f"{doc.label}: {message}\ndocuments applied before the failure: {applied}"
            ) from None


@click.command(name="apply")
@click.option(
    "-f", "--file", "source", default=None, help="path to file (or - for stdin, or a URL)"
)
@click.option("-v", "--var", "variables", multiple=True, help="variable to replace in the template")
@click.option("--dry-run", is_flag=True, help="validate the resources without applying them")
@pass_app
def apply(app: App, source: str | None, variables: tuple[str, ...], dry_run: bool) -> None:
    """Create or modify Kuma resources."""
    text = template.render(read_input(source), template.parse_pairs(variables, "--var"))
    docs = parse_documents(text)
    message = invalid_message(docs)
    if message is not None:
        raise CliError(message)
    if dry_run:
        for doc in docs:
            click.echo(f"{doc.label}: valid")
        click.echo("dry run: validated locally (the API has no dry-run mode); nothing was applied")
        return
    _upload(app, docs)
