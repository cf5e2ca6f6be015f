"""Secret (spec §3.13): internal bytes (CA keys, token signing keys). Never exposed by the API.

Its protobuf-JSON form is a bare base64 string (google.protobuf.BytesValue), not an object.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from kuma.resources.base import Base64Bytes, Spec


class SecretSpec(Spec):
    data: Base64Bytes = b""

    @model_validator(mode="before")
    @classmethod
    def _from_bare_string(cls, value: Any) -> Any:
        return {"data": value} if isinstance(value, str | bytes) else value

    def to_json(self) -> Any:  # type: ignore[override]
        return self.model_dump(mode="json")["data"]
