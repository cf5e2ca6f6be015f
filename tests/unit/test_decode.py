"""Depth-bounded decoding (kuma/decode.py) and the callers that answer it as bad input."""

from __future__ import annotations

import pytest

from cli.kumactl.cmd_apply import parse_documents
from cli.kumactl.errors import CliError
from kuma.decode import MAX_DEPTH, load_json, load_yaml, load_yaml_documents
from services.injector.admission import BadReview, parse_review


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_deepest_allowed_input_decodes_and_one_level_more_does_not() -> None:
    assert load_json(nested(MAX_DEPTH)) is not None
    assert load_yaml(nested(MAX_DEPTH)) is not None
    assert load_yaml_documents(nested(MAX_DEPTH)) == [load_yaml(nested(MAX_DEPTH))]
    for load in (load_json, load_yaml, load_yaml_documents):
        with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
            load(nested(MAX_DEPTH + 1))


def test_input_deeper_than_the_interpreter_can_recurse_is_a_value_error() -> None:
    for load in (load_json, load_yaml, load_yaml_documents):
        with pytest.raises(ValueError, match="nested deeper"):
            load(nested(5_000))


def test_the_injector_and_kumactl_apply_answer_it_as_malformed_input() -> None:
    with pytest.raises(BadReview, match="nested deeper"):
        parse_review(nested(5_000).encode())
    with pytest.raises(CliError, match="YAML contains invalid resource: nested deeper"):
        parse_documents(f"type: Mesh\nname: m\nx: {nested(5_000)}\n")
