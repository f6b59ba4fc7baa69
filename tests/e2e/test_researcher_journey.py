"""The researcher's journey, through the pages only: the trial flow numbers change when a
new participant is enrolled and consents; the export bundle downloads and holds what it
says (tables, codebook, README, checksums that match); the effectiveness report opens
with its tables and figures.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile

from playwright.sync_api import expect

from tests.e2e.people import Person

CONSORT_STAGES = ("Enrolled (invited)", "Consented")


def flow_numbers(researcher: Person) -> dict[str, int]:
    """The "All" column of the CONSORT table on the dashboard, for the stages above."""
    table = researcher.main.get_by_role("table", name=re.compile("each stage of the trial"))
    numbers = {}
    for stage in CONSORT_STAGES:
        row = table.get_by_role("row", name=re.compile("^" + re.escape(stage)))
        numbers[stage] = int(row.get_by_role("cell").first.inner_text())
    return numbers


def enrol_and_consent(researcher: Person, newcomer: Person) -> None:
    researcher.follow("Enrol a participant")
    researcher.main.get_by_label("Site").fill("South clinic")
    researcher.press("Enrol and create invite link")
    link = researcher.main.get_by_label("Invite link").input_value()
    newcomer.goto(link)
    newcomer.main.get_by_label("Display name").fill("Evening Lark")
    newcomer.main.get_by_label("Password", exact=True).fill("lantern harbour quiet")
    newcomer.main.get_by_label("Type the password again").fill("lantern harbour quiet")
    newcomer.main.get_by_role("checkbox", name=re.compile("^I have read the information")).check()
    newcomer.press("Create my account")
    newcomer.sees("Welcome, Evening Lark. Your account is ready.")


def download_bundle(researcher: Person, enrolled: int) -> None:
    """The CSV bundle: every table it lists, a codebook, a README, and SHA256SUMS that
    match the files; one participants row per person enrolled."""
    researcher.goto("/research/exports")
    researcher.sees("What the bundle holds")
    listed = researcher.main.locator("#contents-heading + ul li").all_inner_texts()
    expect(researcher.main.get_by_role("radio", name=re.compile("^CSV"))).to_be_checked()
    researcher.shot("exports")
    with researcher.page.expect_download() as event:
        researcher.main.get_by_role("button", name="Download the bundle").click()
    download = event.value
    assert download.suggested_filename.endswith(".zip"), download.suggested_filename
    path = researcher.shots / download.suggested_filename
    download.save_as(path)
    with zipfile.ZipFile(path) as bundle:
        files = {name.rsplit("/", 1)[-1]: bundle.read(name) for name in bundle.namelist()}
    assert set(files) == {f"{table}.csv" for table in listed} | {"README.md", "SHA256SUMS"}
    assert "codebook" in listed
    sums = dict(reversed(line.split("  ", 1))
                for line in files["SHA256SUMS"].decode().splitlines() if line)
    assert set(sums) == set(files) - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, f"{name}: checksum differs"
    participants = list(csv.DictReader(io.StringIO(files["participants.csv"].decode())))
    assert len(participants) == enrolled
    # pseudonymised: no study codes, display names or phone numbers leave the platform
    everything = b"".join(files.values()).decode(errors="replace")
    for identifying in ("DEMO-0001", "Evening Lark", "Quiet Harbour", "+447700900001"):
        assert identifying not in everything, f"{identifying} is in the export"


def open_report(researcher: Person, enrolled: int) -> None:
    """The report from the exports page: its CONSORT table has today's numbers and every
    figure loads."""
    researcher.follow("effectiveness report")
    researcher.sees(re.compile("Effectiveness report: "))
    researcher.sees("Snapshot checksum")
    table = researcher.main.get_by_role("table").filter(
        has=researcher.page.get_by_role("rowheader", name="Enrolled (invited)")).first
    row = table.get_by_role("row", name=re.compile(r"^Enrolled \(invited\)"))
    expect(row.get_by_role("cell").last).to_have_text(str(enrolled))
    figures = researcher.main.locator("figure img")
    assert figures.count() >= 3, f"only {figures.count()} figures in the report"
    for index in range(figures.count()):
        image = figures.nth(index)
        image.scroll_into_view_if_needed()
        expect(image).to_have_attribute("alt", re.compile(r"\w"))
        researcher.page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                          arg=image.element_handle())
    researcher.settle("figures loaded")
    researcher.shot("report")


def test_researcher_journey(people, server) -> None:
    researcher = people("researcher", phone=False)
    researcher.sign_in("researcher@demo.kinship.test")
    researcher.sees("Trial flow (CONSORT)")
    before = flow_numbers(researcher)

    enrol_and_consent(researcher, people("newcomer"))
    researcher.goto("/research/")
    after = flow_numbers(researcher)
    assert after == {stage: count + 1 for stage, count in before.items()}, (before, after)
    researcher.shot("dashboard")

    download_bundle(researcher, after["Enrolled (invited)"])
    open_report(researcher, after["Enrolled (invited)"])
    researcher.audit.assert_clean()
