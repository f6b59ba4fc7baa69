"""The moderators' journey, through the pages only: a participant's post with risk
language is held and raises a risk alert, which the on-call clinician takes and resolves;
a reported post is hidden by the peer moderator; a check-in is completed by sending a
message, which the participant then reads.

The demo study provides the people: Quiet Harbour (DEMO-0001, on the peer moderator's
caseload), Blue Kettle (DEMO-0003), the on-call clinician and the peer moderator.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.people import Person

RISK_POST = "Some nights I want to kill myself. Nothing I do seems to matter."
UNKIND_POST = "Honestly the people on this forum are pathetic and should stop whining."
CHECKIN_MESSAGE = ("Hello {name}, it has been a while and I wondered how you are. No "
                   "pressure to reply; I'm here if you would like a chat.")


def risk_alert(author: Person, clinician: Person) -> None:
    author.sign_in("DEMO-0001")
    author.goto("/forum/new")
    author.main.get_by_label("Your post").fill(RISK_POST)
    author.press("Post")
    # held at once, and the author sees crisis resources straight away
    author.sees("It sounds like things may be hard right now")
    author.sees("Samaritans")
    author.shot("crisis-resources")
    author.goto("/forum/")
    post = author.main.get_by_role("listitem").filter(has_text=RISK_POST)
    expect(post).to_contain_text("Waiting for a moderator")

    clinician.sign_in("clinician@demo.kinship.test")
    clinician.goto("/moderation/alerts")
    row = clinician.main.get_by_role("row", name=re.compile("DEMO-0001"))
    expect(row).to_contain_text("Suicide or self-harm")
    expect(row).to_contain_text("Open")
    clinician.shot("alerts")
    clinician.follow(re.compile("Suicide or self-harm"), within=row)
    clinician.sees(RISK_POST)
    clinician.press("Take this alert")
    clinician.sees("You have taken this alert. Escalation has stopped.")
    clinician.sees("acknowledged by Dr Sam Patel")
    clinician.shot("alert-taken")
    clinician.main.get_by_role("checkbox", name="Contacted the participant").check()
    clinician.main.get_by_role("radio", name=re.compile("^No")).first.check()
    clinician.main.get_by_label(re.compile("^Note for the clinical team")).fill(
        "Phoned; safe tonight, safety plan in place.")
    clinician.press("Resolve alert")
    clinician.sees("Alert resolved.")
    clinician.sees("No risk alerts open.")
    clinician.follow("Include resolved")
    row = clinician.main.get_by_role("row", name=re.compile("DEMO-0001"))
    expect(row).to_contain_text("Resolved")
    clinician.shot("alerts-resolved")


def report_and_hide(reporter: Person, writer: Person, peer: Person) -> None:
    writer.sign_in("DEMO-0003")
    writer.goto("/forum/new")
    writer.main.get_by_label("Your post").fill(UNKIND_POST)
    writer.press("Post")
    writer.sees(UNKIND_POST)
    post_url = writer.page.url

    reporter.goto(post_url)
    reporter.follow(re.compile("^Report"))
    reporter.press("Send report", label="no reason")
    reporter.sees("Please choose a reason.")
    reporter.main.get_by_role("radio", name="It is unkind, hurtful or bullying").check()
    reporter.press("Send report")
    reporter.sees("Thank you for telling us. A moderator will look at it soon.")

    peer.sign_in("peer@demo.kinship.test")
    peer.goto("/moderation/queue")
    row = peer.main.get_by_role("row").filter(has_text="Blue Kettle")
    expect(row).to_contain_text("1 report")
    peer.shot("queue")
    peer.follow(re.compile(r"^#\d+ post"), within=row)
    peer.sees(UNKIND_POST)
    hide = peer.main.locator("form", has=peer.page.get_by_role("button", name="Hide", exact=True))
    hide.get_by_label("Why hide it").select_option(label="Unkind, hurtful or bullying")
    peer.press(re.compile("^Hide$"), within=hide)
    peer.sees("Hidden from participants. You can show it again from the item page.")
    peer.sees("hidden by Kit (peer supporter) (unkind)")
    peer.shot("post-hidden")
    peer.goto("/moderation/queue")
    expect(peer.main.get_by_role("row").filter(has_text="Blue Kettle")).to_have_count(0)

    # gone from everyone else's feed; its author sees it marked as hidden
    reporter.goto("/forum/")
    reporter.sees("Forum")
    expect(reporter.main).not_to_contain_text(UNKIND_POST)
    writer.goto(post_url)
    writer.sees("Hidden by a moderator")


def checkin(peer: Person, participant: Person) -> None:
    peer.goto("/moderation/checkins")
    first = peer.main.get_by_role("row").nth(1)
    name = first.get_by_role("link").first.inner_text()
    code = first.get_by_role("cell").nth(1).inner_text().strip()
    peer.shot("checkins")
    peer.follow(name, within=first)
    peer.sees(f"{name} ({code})")
    peer.main.get_by_role("radio", name="Message in the app").check()
    peer.main.get_by_role("radio", name="No answer yet").check()
    # the reason's template is already in the message box; empty it to see the error
    peer.main.get_by_label("Message", exact=True).fill("")
    peer.press("Complete check-in", label="no message")
    # an in-app check-in needs its message: the error says so and the choices are kept
    peer.sees("Please write a message first.")
    expect(peer.main.get_by_role("radio", name="No answer yet")).to_be_checked()
    peer.main.get_by_label("Message", exact=True).fill(CHECKIN_MESSAGE.format(name=name))
    peer.press("Complete check-in")
    peer.sees("Check-in done. Your message is in their inbox.")
    peer.sees("Done (1)")
    expect(peer.main.get_by_role("row").filter(has_text=code)).to_have_count(0)
    peer.shot("checkin-done")

    participant.sign_in(code)
    inbox = participant.page.locator("header").get_by_role("link", name=re.compile("^Messages"))
    expect(inbox).to_have_text(re.compile(r"Messages\s*\(1\s*unread\)"))
    with participant.page.expect_navigation():
        inbox.click()
    participant.settle()
    participant.sees(CHECKIN_MESSAGE.format(name=name))
    participant.sees("Kit (peer supporter)")
    participant.shot("messages")
    expect(inbox).to_have_text("Messages")  # read now


def test_moderator_journey(people, server) -> None:
    author = people("participant")
    clinician = people("clinician", phone=False)
    risk_alert(author, clinician)
    peer = people("peer", phone=False)
    report_and_hide(author, people("writer"), peer)
    checkin(peer, people("checked-in"))
    author.audit.assert_clean()  # one audit per journey: every page anyone was shown
