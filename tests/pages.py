"""Reading rendered pages in tests: table rows and form values, with the standard library."""

from __future__ import annotations

from html.parser import HTMLParser


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.inputs: dict[str, str] = {}
        self.selected: dict[str, str] = {}
        self._in_body = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "input" and (values.get("name") or values.get("id")):
            self.inputs[values.get("name") or values["id"]] = values.get("value") or ""
        elif tag == "select":
            self._select = values.get("name")
        elif tag == "option" and self._select and "selected" in values:
            self.selected[self._select] = values.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def read(page: bytes | str) -> _Reader:
    reader = _Reader()
    reader.feed(page.decode() if isinstance(page, bytes) else page)
    reader.close()
    return reader


def table_rows(page: bytes | str) -> list[list[str]]:
    """The text of each cell of each body row of every table on the page."""
    return read(page).rows


def form_values(page: bytes | str) -> dict[str, str]:
    """Input values and selected options by field name (or id, for unnamed inputs)."""
    reader = read(page)
    return {**reader.inputs, **reader.selected}
