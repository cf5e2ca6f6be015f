"""Table, JSON and YAML output byte for byte (spec §6.2-§6.4), without a server."""

from __future__ import annotations

from datetime import UTC, datetime

from cli.kumactl import cmd_get, output
from cli.kumactl.cmd_inspect import HEADER, overview_row
from cli.kumactl.output import View, normalize_overview, print_objects
from cli.kumactl.table import render_table
from kuma.resources.registry import by_kumactl_get

MESH1 = {"type": "Mesh", "name": "mesh1", "mtls": {"enabled": True, "ca": {"builtin": {}}}}
MESH2 = {
    "type": "Mesh",
    "name": "mesh2",
    "mtls": {"ca": {"provided": {}}},
    "metrics": {"prometheus": {"port": 5670, "path": "/metrics"}},
}


def test_table_pads_every_column_but_the_last():
    assert render_table(["A", "LONGER", "C"], [["xx", "", "last"], ["", "y", ""]]) == (
        "A    LONGER   C\nxx            last\n     y        \n"
    )


def test_get_meshes_table_is_the_spec_example(capsys):
    view = cmd_get.view_of(by_kumactl_get("meshes"))
    print_objects([MESH1, MESH2], "table", view)
    assert capsys.readouterr().out == (
        "NAME    mTLS   CA         METRICS\n"
        "mesh1   on     builtin    off\n"
        "mesh2   off    provided   prometheus\n"
    )


def test_json_sorts_top_level_keys_and_keeps_protobuf_order_inside(capsys):
    view = cmd_get.view_of(by_kumactl_get("meshes"))
    print_objects([MESH1], "json", view)
    assert capsys.readouterr().out == (
        "{\n"
        '  "items": [\n'
        "    {\n"
        '      "mtls": {\n'
        '        "ca": {\n'
        '          "builtin": {}\n'
        "        },\n"
        '        "enabled": true\n'
        "      },\n"
        '      "name": "mesh1",\n'
        '      "type": "Mesh"\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )


def test_yaml_sorts_every_key_and_does_not_indent_sequences(capsys):
    dp = {
        "type": "Dataplane",
        "name": "dp-1",
        "mesh": "default",
        "networking": {
            "inbound": [{"interface": "127.0.0.1:9090:9091", "tags": {"service": "web"}}]
        },
    }
    print_objects([dp], "yaml", cmd_get.view_of(by_kumactl_get("dataplanes")))
    assert capsys.readouterr().out == (
        "items:\n"
        "- mesh: default\n"
        "  name: dp-1\n"
        "  networking:\n"
        "    inbound:\n"
        "    - interface: 127.0.0.1:9090:9091\n"
        "      tags:\n"
        "        service: web\n"
        "  type: Dataplane\n"
    )


def test_yaml_of_nothing_is_null():
    assert output.render(None, "yaml") == "null\n"


def test_unknown_fields_from_the_server_are_kept():
    item = {**MESH1, "creationTime": "2020-01-01T00:00:00Z"}
    assert list(output.normalize_resource(item)) == ["creationTime", "mtls", "name", "type"]


def test_dataplane_tags_column():
    dp = {
        "type": "Dataplane",
        "mesh": "default",
        "name": "experiment",
        "networking": {
            "inbound": [
                {"interface": "1.1.1.1:1:2", "tags": {"service": "mobile", "version": "v1"}},
                {"interface": "1.1.1.1:3:4", "tags": {"service": "metrics", "version": "v1"}},
            ]
        },
    }
    row = cmd_get.view_of(by_kumactl_get("dataplanes")).row(dp)
    assert row == ["default", "experiment", "service=metrics,mobile version=v1"]


NOW = datetime(2020, 1, 1, 12, 0, 0, tzinfo=UTC)
EXPERIMENT = {
    "type": "DataplaneOverview",
    "mesh": "default",
    "name": "experiment",
    "dataplane": {
        "networking": {
            "inbound": [
                {"interface": "1.1.1.1:1:2", "tags": {"service": "mobile", "version": "v1"}},
                {"interface": "1.1.1.1:3:4", "tags": {"service": "metrics", "version": "v1"}},
            ]
        }
    },
    "dataplaneInsight": {
        "subscriptions": [
            {
                "id": "1",
                "connectTime": "2020-01-01T08:00:00Z",
                "disconnectTime": "2020-01-01T09:00:00Z",
                "status": {"total": {"responsesSent": "10", "responsesRejected": "1"}},
            },
            {
                "id": "2",
                "connectTime": "2020-01-01T09:56:55.600Z",  # 2h3m4.4s ago: truncated
                "status": {"total": {"responsesSent": "20", "responsesRejected": "2"}},
            },
        ]
    },
}
EXAMPLE = {
    "type": "DataplaneOverview",
    "mesh": "default",
    "name": "example",
    "dataplane": {
        "networking": {"inbound": [{"interface": "1.1.1.1:1:2", "tags": {"service": "example"}}]}
    },
}


def test_inspect_table_is_the_spec_example(capsys):
    view = View(HEADER, lambda item: overview_row(item, NOW), normalize_overview)
    print_objects([EXPERIMENT, EXAMPLE], "table", view)
    assert capsys.readouterr().out == (
        "MESH      NAME         TAGS                                STATUS    "
        "LAST CONNECTED AGO   LAST UPDATED AGO   TOTAL UPDATES   TOTAL ERRORS\n"
        "default   experiment   service=metrics,mobile version=v1   Online    "
        "2h3m4s               never              30              3\n"
        "default   example      service=example                     Offline   "
        "never                never              0               0\n"
    )


def test_inspect_last_updated_comes_from_the_latest_subscription():
    item = {
        "mesh": "m",
        "name": "n",
        "dataplaneInsight": {
            "subscriptions": [
                {
                    "connectTime": "2020-01-01T11:00:00Z",
                    "status": {"lastUpdateTime": "2020-01-01T11:59:30Z"},
                },
                {
                    "connectTime": "2020-01-01T10:00:00Z",
                    "status": {"lastUpdateTime": "2020-01-01T11:59:59Z"},
                },
            ]
        },
    }
    assert overview_row(item, NOW)[3:6] == ["Online", "1h0m0s", "30s"]


def test_inspect_without_connect_time_uses_the_first_subscription():
    item = {
        "mesh": "m",
        "name": "n",
        "dataplaneInsight": {
            "subscriptions": [{"status": {"lastUpdateTime": "2020-01-01T11:00:00Z"}}, {}]
        },
    }
    assert overview_row(item, NOW)[3:6] == ["Offline", "never", "1h0m0s"]
