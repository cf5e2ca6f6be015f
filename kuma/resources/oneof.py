"""protobuf `oneof`: at most one member may be set, as protobuf-JSON decoding enforces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticCustomError


def one_of(*members: str) -> Callable[[Any], Any]:
    def check(model: Any) -> Any:
        present = [m for m in members if getattr(model, m) is not None]
        if len(present) > 1:
            raise PydanticCustomError(
                "oneof", "only one of {members} can be set", {"members": ", ".join(members)}
            )
        return model

    return check
