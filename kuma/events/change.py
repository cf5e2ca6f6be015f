"""What travels on the change feed: one `Change` per committed write, plus the RESYNC marker.

A Change is a hint ("this key moved at that store revision"), never the data itself: receivers
re-read the store. That keeps messages tiny and makes a duplicate or reordered message harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

Op = Literal["create", "update", "delete", "resync"]
OPS: frozenset[str] = frozenset(get_args(Op))

# op of the marker meaning "something changed that you did not hear about: re-read everything".
RESYNC: Op = "resync"


@dataclass(frozen=True, slots=True)
class Change:
    op: Op
    type: str
    mesh: str
    name: str
    version: int
    # Store revision of the write (see ResourceStore.revision); for a RESYNC, the store revision
    # the receiver will at least catch up to by re-reading (0 when unknown).
    revision: int

    @classmethod
    def resync(cls, revision: int = 0) -> Change:
        return cls(op=RESYNC, type="", mesh="", name="", version=0, revision=revision)

    @property
    def is_resync(self) -> bool:
        return self.op == RESYNC

    def to_json(self) -> str:
        return json.dumps(
            {
                "op": self.op,
                "type": self.type,
                "mesh": self.mesh,
                "name": self.name,
                "version": self.version,
                "revision": self.revision,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> Change:
        """Parse a message; anything malformed raises ValueError (and only ValueError).

        Unknown keys are ignored so that a newer publisher can add fields.
        """
        try:
            raw: Any = json.loads(data)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ValueError(f"change is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("change must be a JSON object")
        op = raw.get("op")
        if not isinstance(op, str) or op not in OPS:
            raise ValueError(f"unknown change op {op!r}")
        texts = {key: raw.get(key) for key in ("type", "mesh", "name")}
        numbers = {key: raw.get(key) for key in ("version", "revision")}
        for key, text in texts.items():
            if not isinstance(text, str):
                raise ValueError(f"change {key} must be a string")
        for key, number in numbers.items():
            # bool is an int subclass: refuse it explicitly.
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise ValueError(f"change {key} must be a non-negative integer")
        return cls(
            op=cast(Op, op),
            type=cast(str, texts["type"]),
            mesh=cast(str, texts["mesh"]),
            name=cast(str, texts["name"]),
            version=cast(int, numbers["version"]),
            revision=cast(int, numbers["revision"]),
        )
