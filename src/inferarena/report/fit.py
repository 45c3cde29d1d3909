"""Tables that fit the terminal. Rich shrinks a table that is wider than the console by cutting
cells and headers to `…`; in a log without a TTY the rows then wrap. Instead, the columns that do
not fit move to a second table (then a third) that repeats the row's identity columns (`#`,
`variant`), and every cell keeps its full text. `wide=True` keeps one table, however wide.

Titles and notes are printed as lines of their own, so they wrap at the console's width rather than
at a narrow table's."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass
class Col:
    header: str
    cells: list[str]  # rich markup, one per row (escape user text before it lands here)
    justify: str = "right"
    key: bool = False  # the row's identity: repeated in every part


def _table(columns: list[Col]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for column in columns:
        table.add_column(column.header, justify=column.justify, no_wrap=True)
    for row in zip(*(c.cells for c in columns)):
        table.add_row(*row)
    return table


def natural_width(console: Console, renderable: RenderableType) -> int:
    """Columns the renderable takes when nothing is cut."""
    return Measurement.get(console, console.options.update(width=1_000_000), renderable).maximum


def parts(columns: list[Col], console: Console, wide: bool = False) -> list[Table]:
    """The columns as one table when it fits (or when `wide`), else as several, in column order."""
    keys = [c for c in columns if c.key]
    rest = [c for c in columns if not c.key]
    if wide or not rest:
        return [_table(columns)]
    groups: list[list[Col]] = [[]]
    for column in rest:
        trial = keys + groups[-1] + [column]
        if groups[-1] and natural_width(console, _table(trial)) > console.width:
            groups.append([column])
        else:
            groups[-1].append(column)
    ordered = [[c for c in columns if c.key or c in group] for group in groups]
    return [_table(group) for group in ordered]


def print_table(console: Console, title: str | None, columns: list[Col], notes: list[str] = (),
                wide: bool = False) -> None:
    """Title line, the table's parts (each later one titled as a continuation), then the notes."""
    tables = parts(columns, console, wide)
    short = (title or "").split(" — ")[0]
    for index, table in enumerate(tables):
        if index:
            console.print()
            console.print(Text.from_markup(f"[bold]{short}[/] [dim](continued, {index + 1}/{len(tables)})[/]"))
        elif title:
            console.print(Text.from_markup(f"[bold]{title}[/]"))
        console.print(table)
    for note in notes:
        console.print(Text.from_markup(note))
    console.print()
