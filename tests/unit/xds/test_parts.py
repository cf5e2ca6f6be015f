"""Parts: built once per key while in use, let go two passes after the last use, and a pass
larger than the floor keeps everything it built."""

from __future__ import annotations

from services.xds.generator.parts import Parts


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x * x * x


def test_a_part_is_built_once_and_keyed_by_its_function_and_arguments() -> None:
    parts = Parts()
    assert parts.build(square, 3) == 9
    assert parts.build(square, 3) == 9
    assert parts.build(cube, 3) == 27  # same arguments, another function: another part
    assert parts.built_by == {"square": 1, "cube": 1}
    assert parts.reused == 1


def test_what_a_pass_does_not_use_is_gone_after_the_next() -> None:
    parts = Parts()
    parts.build(square, 1)
    parts.next_pass()
    parts.build(square, 2)  # 1 is not asked for in this pass...
    parts.next_pass()
    parts.build(square, 2)
    parts.build(square, 1)  # ...so it is built again
    assert parts.built_by["square"] == 3


def test_a_pass_over_many_nodes_keeps_every_part_it_built() -> None:
    parts = Parts(floor=100)
    nodes = 1000
    parts.next_pass(nodes)
    for i in range(10 * nodes):  # ten parts per node, 100 times the floor
        parts.build(square, i)
    parts.next_pass(nodes)
    for i in range(10 * nodes):
        parts.build(square, i)
    assert parts.built == 10 * nodes


def test_between_passes_parts_stay_bounded() -> None:
    parts = Parts(floor=100)
    for i in range(100_000):  # streams coming and going on a mesh that never changes
        parts.build(square, i)
    assert len(parts) <= 400
