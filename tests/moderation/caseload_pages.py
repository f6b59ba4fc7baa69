"""Reading the caseload page in tests: the main table and the "Not to be contacted" list."""

from __future__ import annotations

from typing import NamedTuple

from tests.pages import table_rows

LABELS = {"Active in the last 2 days": "green", "Active in the last week": "amber",
          "Quiet for over a week": "red", "Quiet for over 30 days": "grey",
          "No activity yet": "grey"}


class Row(NamedTuple):
    name: str
    code: str
    arm: str
    band: str
    last: str
    mood: str
    sms: str
    progress: str
    alerts: str
    checkins: str
    unread: str


class ApartRow(NamedTuple):
    name: str
    code: str
    arm: str
    status: str
    band: str


def _band(text: str) -> str:
    return next(colour for label, colour in LABELS.items() if text.startswith(label))


def _person(cell: str) -> tuple[str, str]:
    name, _, code = cell.rpartition(" ")
    return name, code


def _split(page: bytes | str) -> tuple[str, str]:
    text = page.decode() if isinstance(page, bytes) else page
    main, _, apart = text.partition("<details")
    return main, apart


def caseload_rows(page: bytes | str) -> list[Row]:
    """The rows of the main table (people who may be contacted), in page order."""
    main, _ = _split(page)
    rows = []
    for cells in table_rows(main):
        if len(cells) == 1:  # the "nobody here" line
            continue
        rows.append(Row(*_person(cells[0]), cells[1], _band(cells[2]), *cells[2:]))
    return rows


def apart_rows(page: bytes | str) -> list[ApartRow]:
    """The rows of the collapsed "Not to be contacted" list."""
    _, apart = _split(page)
    return [ApartRow(*_person(cells[0]), cells[1], cells[2], _band(cells[3]))
            for cells in table_rows(apart)]
