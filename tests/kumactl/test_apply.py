"""`kumactl apply` (spec §6.5): templating, local validation of every document, dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.kumactl.template import render
from tests.kumactl.conftest import Canned, Kumactl
from tests.unit.resources.test_raw_envoy_resources import TCP_LISTENER, V2_LISTENER

DATAPLANE = """\
type: Dataplane
mesh: {{mesh}}
name: {{name}}
networking:
  inbound:
  - interface: 127.0.0.1:10000:9000
    tags:
      service: backend
"""


def test_mustache_variables():
    assert render("a: {{x}}\nb: {{ y }}\nc: {{{x}}}{{& x}}{{! gone }}", {"x": "1&2"}) == (
        "a: 1&2\nb: \nc: 1&21&2"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type: Mesh\n", "Name field cannot be empty"),
        ("type: Dataplane\nname: x\n", "Mesh field cannot be empty"),
        ("type: Bogus\nname: x\nmesh: default\n", "invalid type of resource type"),
        ("type: Secret\nname: x\nmesh: default\n", "invalid type of resource type"),
        ("- a\n", "a resource must be a YAML mapping"),
        (
            "type: Dataplane\nname: x\nmesh: default\nnetworking: {inbound: 7}\n",
            "networking.inbound: must be an array",
        ),
        (
            "type: Mesh\nname: Bad.Name\n",
            "name: invalid characters. Valid characters are numbers, lowercase latin letters "
            "and '-', '_' symbols.",
        ),
    ],
)
def test_one_invalid_document(kumactl: Kumactl, text: str, message: str):
    result = kumactl("apply", input=text)
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: YAML contains invalid resource: {message}\n",
    )


def test_several_violations_of_one_document(kumactl: Kumactl):
    result = kumactl("apply", input="type: TrafficPermission\nname: tp\nmesh: default\n")
    assert result.stderr == (
        "Error: YAML contains invalid resource: Resource is not valid\n"
        "* sources: must have at least one element\n"
        "* destinations: must have at least one element\n"
    )


def test_invalid_documents_are_listed_by_number_and_nothing_is_applied(
    kumactl: Kumactl, stub_server: tuple[str, Canned], home: Path
):
    url, canned = stub_server
    canned.body = b'{"tagline": "Kuma"}'
    assert (
        kumactl("config", "control-planes", "add", "--name", "s", "--address", url).exit_code == 0
    )
    text = (
        DATAPLANE.replace("{{mesh}}", "default").replace("{{name}}", "ok")
        + "---\n"  # document 2 is empty and counts
        + "---\ntype: TrafficRoute\nname: tr\nmesh: default\n"
        + "---\ntype: Mesh\nname: fine\n"
        + "---\ntype: Nope\nname: x\nmesh: y\n"
    )
    seen_before = len(canned.seen or [])
    result = kumactl("apply", input=text)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 2 of 4 YAML documents contain invalid resources; nothing was applied\n"
        '* document 3 (TrafficRoute "tr"): sources: must have at least one element\n'
        '* document 3 (TrafficRoute "tr"): destinations: must have at least one element\n'
        '* document 3 (TrafficRoute "tr"): conf: must have at least one element\n'
        "* document 5: invalid type of resource type\n"
    )
    assert len(canned.seen or []) == seen_before  # not one request


def test_malformed_yaml(kumactl: Kumactl):
    result = kumactl("apply", input="a: [\n")
    assert result.stderr.startswith("Error: YAML contains invalid resource: ")


def test_missing_file(kumactl: Kumactl, tmp_path: Path):
    result = kumactl("apply", "-f", str(tmp_path / "none.yaml"))
    assert result.exit_code == 1
    assert "none.yaml" in result.stderr


def test_bad_var(kumactl: Kumactl):
    result = kumactl("apply", "-v", "novalue", input="type: Mesh\nname: x\n")
    assert result.stderr == (
        'Error: invalid argument "novalue" for "--var" flag: novalue must be formatted as '
        "key=value\n"
    )


def test_dry_run_validates_locally_and_sends_nothing(kumactl: Kumactl, tmp_path: Path):
    path = tmp_path / "dp.yaml"
    path.write_text("type: Mesh\nname: m1\nmtls:\n  enabled: true\n---\n" + DATAPLANE)
    result = kumactl("apply", "--dry-run", "-f", str(path), "-v", "mesh=m1", "-v", "name=dp-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        'document 1 (Mesh "m1"): valid\n'
        'document 2 (Dataplane "dp-1"): valid\n'
        "dry run: validated locally (the API has no dry-run mode); nothing was applied\n"
    )


@pytest.mark.parametrize("resource", [TCP_LISTENER, V2_LISTENER], ids=["v3", "kuma-0.3-v2"])
def test_the_kumactl_program_takes_a_raw_resource_with_a_typed_config(
    tmp_path: Path, resource: str
):
    """The program itself, not CliRunner: this session has imported the generator, whose
    protobuf modules would hide a message kumactl's own validation cannot find."""
    path = tmp_path / "template.yaml"
    raw = {"name": "raw", "version": "v1", "resource": resource}
    template = {"type": "ProxyTemplate", "mesh": "default", "name": "raw"}
    path.write_text(yaml.safe_dump({**template, "conf": {"resources": [raw]}}))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "kumactl"), "apply", "--dry-run", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith('document 1 (ProxyTemplate "raw"): valid\n')


def test_url_input_is_fetched(kumactl: Kumactl, stub_server: tuple[str, Canned]):
    url, canned = stub_server
    canned.body = b"type: Mesh\nname: {{n}}\n"
    result = kumactl("apply", "--dry-run", "-f", url + "/mesh.yaml", "-v", "n=from-url")
    assert result.stdout.startswith('document 1 (Mesh "from-url"): valid\n')
    canned.status = 404
    result = kumactl("apply", "-f", url + "/mesh.yaml")
    assert result.stderr == f"Error: error while retrieving URL {url}/mesh.yaml: status code 404\n"
