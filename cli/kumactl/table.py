"""Table output (spec §6.2): every cell but the last is left-aligned and padded to the widest cell
of its column + 3; the last is not padded; one `\n`-terminated line per row, header first."""

from __future__ import annotations

from collections.abc import Sequence

PADDING = 3


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    all_rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(header))]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(widths[i] + PADDING) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return "".join(line + "\n" for line in lines)
