"""How every benchmark reports: each row as soon as it is measured (long runs show progress),
then the whole table once all rows are in."""

from collections.abc import Sequence

from cli_common.tables import format_table


class BenchReport:
    """Collects rows under fixed headers; :meth:`add` echoes a row, :meth:`print_table` ends."""

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers = list(headers)
        self.rows: list[list[object]] = []

    def add(self, row: Sequence[object]) -> None:
        self.rows.append(list(row))
        print("  " + "  ".join(str(c) for c in row), flush=True)

    def print_table(self) -> None:
        print()
        print(format_table(self.headers, self.rows))
