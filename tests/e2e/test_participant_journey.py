"""The participant's journey on a phone (390x844), through the pages only: invite link,
password, display name and consent; the baseline UCLA-LS, MSPSS and LSNS-6 (the first one
keyboard-only); randomisation; a module step (keyboard-only) and the module's quiz;
points and a badge; a mood; a forum post and the notification of a peer's reaction; and
an answer to an SMS prompt through the developer SMS inbox.

The researcher enrols the participant on the enrolment page, at a site whose next
allocation is the guided arm (``trial_site``: the forum is the guided arm's), and the demo
participant Quiet Harbour reacts to the post. The participant picks a time zone where it
is morning (``timezones``) and later says their day starts this minute, so the daily
09:00 prompt is due now whatever hour the suite runs. The only command-line step is
``flask sms tick --at`` that minute: the scheduler's SMS jobs, run at once.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.e2e.people import Person
from tests.e2e.server import Server
from tests.e2e.timezones import morning_zone

NAME = "Morning Heron"
PASSWORD = "kettle river blue sky"
POST = "Small win today: I said hello to my neighbour and we talked about her garden."


def enrol(researcher: Person, site: str) -> str:
    researcher.sign_in("researcher@demo.kinship.test")
    researcher.goto("/research/participants/new")
    researcher.main.get_by_label("Site").fill(site)
    researcher.press("Enrol and create invite link")
    researcher.sees("Copy this link now")
    researcher.shot("invite-link")
    link = researcher.main.get_by_label("Invite link").input_value()
    researcher.sign_out()
    return link


def accept_invite(me: Person, link: str, zone: str) -> str:
    """Set up the account from the invite link; return the study code it shows."""
    me.goto(link)
    me.sees("Welcome to Kinship")
    study_code = me.main.locator("strong").first.inner_text()
    me.main.get_by_label("Display name").fill(NAME)
    me.main.get_by_label("Password", exact=True).fill(PASSWORD)
    me.main.get_by_label("Type the password again").fill(PASSWORD)
    me.main.get_by_label("Your time zone").select_option(zone)
    me.main.get_by_label(re.compile("^Mobile number")).fill("12345")
    me.main.get_by_role("checkbox", name=re.compile("^I agree to receive text")).check()
    me.main.get_by_role("checkbox", name=re.compile("^I have read the information")).check()
    me.shot("invite-form")
    me.press("Create my account", label="bad phone")
    # a clear error on the field, and what was typed is kept
    me.sees("That phone number is not valid")
    expect(me.main.get_by_label("Display name")).to_have_value(NAME)
    me.main.get_by_label(re.compile("^Mobile number")).fill("07400 123456")
    me.main.get_by_label("Password", exact=True).fill(PASSWORD)
    me.main.get_by_label("Type the password again").fill(PASSWORD)
    me.press("Create my account")
    me.sees(f"Welcome, {NAME}. Your account is ready.")
    me.sees(study_code)
    me.shot("home-after-consent")
    return study_code


def next_button(number: int, count: int) -> str:
    return "Next" if number < count else "Check my answers"


def answer_keyboard_only(me: Person, count: int) -> None:
    """One questionnaire with Tab, Space and Enter only: Tab to the first answer, Space
    to choose it, Tab to Next, Enter."""
    for number in range(1, count + 1):
        me.sees(f"Question {number} of {count}")
        me.tab_to(me.main.get_by_role("radio"))
        me.keys("Space")
        expect(me.main.get_by_role("radio").first).to_be_checked()
        me.tab_to(me.main.get_by_role("button", name=next_button(number, count)))
        me.submit_with_keyboard("Enter")
    me.sees("Check your answers")
    me.tab_to(me.main.get_by_role("button", name="Send my answers"))
    me.submit_with_keyboard("Enter")


def answer_with_clicks(me: Person, count: int, option: int) -> None:
    for number in range(1, count + 1):
        me.sees(f"Question {number} of {count}")
        me.main.get_by_role("radio").nth(option).check()
        me.press(next_button(number, count))
    me.sees("Check your answers")
    me.shot("questionnaire-review")
    me.press("Send my answers")


def baseline(me: Person) -> None:
    me.goto("/questionnaires/")
    me.sees("UCLA-LS v3")
    me.shot("questionnaires")
    me.tab_to(me.main.get_by_role("button", name=re.compile("UCLA-LS")))
    me.submit_with_keyboard("Enter")
    answer_keyboard_only(me, 20)
    me.goto("/questionnaires/")
    me.press(re.compile("Start.*MSPSS"))
    answer_with_clicks(me, 12, option=4)
    me.goto("/questionnaires/")
    me.press(re.compile("Start.*LSNS-6"))
    answer_with_clicks(me, 6, option=2)


def test_participant_journey(people, server) -> None:
    researcher = people("researcher", phone=False)
    link = enrol(researcher, server.site)
    me = people("participant")
    zone = morning_zone(datetime.now(UTC))
    study_code = accept_invite(me, link, zone)

    baseline(me)
    randomised_at = datetime.now(UTC)
    me.sees("Thank you")
    me.sees("You are now taking part in the study")
    me.shot("baseline-done-randomised")
    me.follow("Go to Today")

    module_step_keyboard_only(me)
    quiz(me)
    points_and_badge(me)
    mood(me)
    post_and_reaction(me, people("peer"))
    sms_prompt(me, server, zone, randomised_at, study_code)


def module_step_keyboard_only(me: Person) -> None:
    """From Today, Tab to the first step, Enter; Tab to "Mark as done", Enter."""
    me.sees("Your next step")
    me.shot("today")
    me.tab_to(me.main.get_by_role("link", name=re.compile("^Start")))
    me.submit_with_keyboard("Enter")
    me.sees("Step 1 of 7")
    me.shot("module-step")
    me.tab_to(me.main.get_by_role("button", name="Mark as done"))
    me.submit_with_keyboard("Enter")
    # the step is done, points and the first badge are announced, the next step opens
    me.sees("Step done. +10 points")
    me.sees("New badge: First step")
    me.sees("Step 2 of 7")


def quiz(me: Person) -> None:
    """Read on to the module's quiz and pass it."""
    me.press("Mark as done")
    me.sees("Step 3 of 7")
    me.press("Mark as done")
    me.sees("Step 4 of 7")
    me.sees("Check what you know")
    group = me.main.get_by_role("group")
    group.nth(0).get_by_label("It is a signal that you need more connection").check()
    group.nth(1).get_by_label("Emotional loneliness", exact=True).check()
    me.press("Check my answers", label="question 3 unanswered")
    # a clear error on the unanswered question; the answers given are kept
    me.sees("Choose at least one answer.")
    expect(group.nth(1).get_by_label("Emotional loneliness", exact=True)).to_be_checked()
    group.nth(2).get_by_label("Noticing a worried thought and checking it").check()
    group.nth(2).get_by_label("Being kind to yourself about feeling lonely").check()
    group.nth(2).get_by_label("Taking one very small step towards someone").check()
    me.press("Check my answers")
    me.sees("You passed")
    me.sees("You got 3 of 3 questions right")
    me.shot("quiz-passed")


def points_and_badge(me: Person) -> None:
    me.goto("/modules/progress")
    me.sees(re.compile(r"60\s*points"))  # 4 steps x 10, the quiz 20
    me.sees("You have earned 1 of 9 badges.")
    expect(me.main.get_by_text("Earned", exact=False).first).to_be_visible()
    me.shot("progress")


def mood(me: Person) -> None:
    me.goto("/modules/today")
    me.main.get_by_role("radio", name="Good", exact=True).check()
    me.main.get_by_label("Anything you want to add?").fill("Walked to the shop and chatted.")
    me.press("Save my mood")
    me.sees("Your mood is saved. +5 points")
    me.sees("Today you said: 🙂 Good (4 of 5).")
    me.sees(re.compile(r"65\s*points"))
    me.shot("mood-logged")


def post_and_reaction(me: Person, peer: Person) -> None:
    me.goto("/forum/new")
    me.main.get_by_label("Your post").fill(POST)
    me.press("Post")
    me.sees(POST)
    me.shot("forum-post")
    post_url = me.page.url

    peer.sign_in("DEMO-0001")
    peer.goto("/forum/")
    peer.sees(POST[:40])
    peer.goto(post_url)
    peer.press("Thinking of you", within=peer.main.locator("#reactions"))
    peer.sees("You sent “Thinking of you”.")

    me.goto("/forum/")
    notifications = me.page.locator("header").get_by_role("link", name=re.compile("^Notifications"))
    expect(notifications).to_have_text(re.compile(r"Notifications\s*\(1\s*unread\)"))
    with me.page.expect_navigation():
        notifications.click()
    me.settle()
    me.sees("You have 1 unread notification.")
    me.sees("Quiet Harbour reacted to your post: Thinking of you.")
    me.shot("notifications")
    me.press(re.compile("^Open"))
    assert me.page.url.startswith(post_url)
    me.sees(POST)
    expect(notifications).to_have_text("Notifications")


def sms_prompt(me: Person, server: Server, zone: str, randomised_at: datetime,
               study_code: str) -> None:
    """Start the day now (the daily 09:00 prompt moves to the start of a later waking
    day), let the SMS jobs run at that minute, and answer in the developer SMS inbox."""
    # prompts go only to randomised people: the minute must start after randomisation
    next_minute = randomised_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    wait = (next_minute + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    start = datetime.now(ZoneInfo(zone)).replace(second=0, microsecond=0)
    me.goto("/account")
    me.main.get_by_label("My day usually starts at").fill(start.strftime("%H:%M"))
    me.press("Save changes")
    me.sees("Your settings are saved.")
    server.flask("sms", "tick", "--at", start.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))

    me.goto("/sms/dev")
    thread = me.main.locator("section.sms-thread", has_text=study_code)
    expect(thread).to_contain_text("How lonely did you feel today?")
    me.shot("sms-prompt")
    thread.get_by_label("Reply as this participant").fill("8")
    me.press("Send reply", within=thread)
    # the answer went through the signed webhook, matched the open prompt and was
    # scored: the tailored feedback for a high score came straight back
    thread = me.main.locator("section.sms-thread", has_text=study_code)
    expect(thread).to_contain_text("→ handled")
    expect(thread).to_contain_text("Thank you for telling us. Feeling very lonely is hard.")
    me.shot("sms-answered")
    me.audit.assert_clean()
