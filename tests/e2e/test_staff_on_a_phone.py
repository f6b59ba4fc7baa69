"""Staff on a phone: a peer moderator checks the forum on the bus, a clinician on call
takes a risk alert from wherever they are. Every page in each staff member's navigation
opens on a 390 px screen, passes axe, and never scrolls sideways as a whole (a data table
may scroll inside its own labelled region; the rota's hidden labels once pushed the whole
page 130 px wider than the screen)."""

from __future__ import annotations

from tests.e2e.people import Person

#: read by the ``people`` fixture: wide staff tables scroll inside their region
REGIONS_MAY_SCROLL = True

STAFF = {
    "peer": "peer@demo.kinship.test",
    "clinician": "clinician@demo.kinship.test",
    "researcher": "researcher@demo.kinship.test",
    "admin": "admin@demo.kinship.test",
}


def nav_paths(person: Person) -> list[str]:
    links = person.page.locator("header nav a")
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


def test_every_staff_page_fits_a_phone(people) -> None:
    for name, email in STAFF.items():
        person = people(name, phone=True)
        person.sign_in(email)
        paths = nav_paths(person)
        assert len(paths) >= 4, (name, paths)
        for path in paths:
            assert person.goto(path) == 200, (name, path)
        person.shot("last-page")
        person.audit.assert_clean()
