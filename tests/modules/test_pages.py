"""The participant pages of the modules: today, library, module, every kind of step,
progress, the mood check, suggestions and media files, through the test client."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

from core import clock
from core.extensions import db
from core.roles import Role
from modules import services
from modules.models import ActionPlan, CheckpointRating, JournalEntry, MoodEntry, StepProgress
from tests.factories import make_participant, make_staff
from tests.modules.content_rows import add_step, count_of, make_module, make_pathway, steps_of

#: a Wednesday, 10:00 in London
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
CODE = "T-0001"


@dataclass
class Library:
    """Keys of the content rows a test uses (no instances across requests)."""

    module: str
    steps: list[str]
    locked: str
    participant_id: int


def make_library() -> Library:
    """Two modules in one pathway: "first-steps" (read, quiz, action, reflect, checkpoint)
    and "reaching-out", which opens after the first; a participant in a modules arm."""
    pathway = make_pathway("foundations")
    first = make_module("first-steps", title="First steps", pathway=pathway, position=1)
    make_module("reaching-out", title="Reaching out", pathway=pathway, position=2,
                unlock={"after": "first-steps"})
    participant = make_participant(code=CODE, arm="guided")
    db.session.commit()
    return Library("first-steps", [s.key for s in steps_of(first)], "reaching-out",
                   participant.id)


@pytest.fixture
def lib(app, client, auth) -> Library:
    clock.set_time(NOW)
    with app.app_context():
        library = make_library()
    assert auth.login(CODE).status_code == 302
    return library


def text(response) -> str:
    """The page as text with tags removed and white space collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", unescape(body))


def step_url(lib: Library, index: int) -> str:
    return f"/modules/{lib.module}/{lib.steps[index]}"


def complete(app, lib: Library, *indexes: int) -> None:
    from core.models import Participant
    from modules.models import Step

    with app.app_context():
        participant = db.session.get(Participant, lib.participant_id)
        for index in indexes:
            step = db.session.scalar(select(Step).where(Step.key == lib.steps[index]))
            services.complete_step(participant, step)
        db.session.commit()


# --------------------------------------------------------------------------- today


def test_today_page_shows_the_next_step_mood_check_and_progress(lib, client):
    """It greets the participant and offers the first step, the mood check with words
    and symbols, the streak, points and level, and the crisis link."""
    response = client.get("/modules/today")
    assert response.status_code == 200
    page = text(response)
    assert "Good morning, Quiet Harbour" in page
    assert f'href="{step_url(lib, 0)}"' in response.get_data(as_text=True)
    assert "Read step 1" in page and "Start" in page
    for word in ("Very low", "Low", "Okay", "Good", "Very good"):
        assert word in page
    html = response.get_data(as_text=True)
    assert html.count('type="radio" id="score') == 5
    assert "<legend>How are you feeling today?</legend>" in html
    assert "points" in page and "level: Seedling" in page
    assert "to start a run of days" in page
    assert 'href="/help"' in html


def test_today_resumes_at_the_first_undone_step(lib, app, client):
    """It links the next undone step once earlier ones are done ("Carry on")."""
    complete(app, lib, 0, 1)
    response = client.get("/modules/today")
    html = response.get_data(as_text=True)
    assert f'href="{step_url(lib, 2)}"' in html
    assert f'href="{step_url(lib, 0)}"' not in html
    assert "Carry on" in text(response)


def test_core_home_sends_a_modules_participant_to_today(lib, client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/modules/today")


# --------------------------------------------------------------------------- library, module


def test_library_groups_modules_by_pathway_with_progress_and_locks(lib, app, client):
    """It shows each module with its summary facts and progress, and a locked module with
    its reason and no link."""
    complete(app, lib, 0, 1, 2)
    response = client.get("/modules/")
    assert response.status_code == 200
    page, html = text(response), response.get_data(as_text=True)
    assert "Foundations" in page
    assert "First steps" in page and "3 of 5 steps done" in page and "In progress" in page
    assert "About 10 minutes" in page and "CBT" in page
    assert "Locked" in page and "Opens after you finish 'First steps'" in page
    assert 'href="/modules/reaching-out"' not in html


def test_module_page_lists_steps_with_done_marks_in_words(lib, app, client):
    complete(app, lib, 0)
    response = client.get(f"/modules/{lib.module}")
    assert response.status_code == 200
    page, html = text(response), response.get_data(as_text=True)
    assert "1 of 5 steps done" in page
    assert "✓ Done" in page and "Not done yet" in page and "Next" in page
    for index in range(5):
        assert f'href="{step_url(lib, index)}"' in html
    assert 'value="20"' in html  # the <progress> bar, with the words above it


def test_locked_module_page_explains_why_without_step_links(lib, client):
    response = client.get(f"/modules/{lib.locked}")
    assert response.status_code == 200
    page, html = text(response), response.get_data(as_text=True)
    assert "Not open yet" in page and "Opens after you finish 'First steps'" in page
    assert f'href="/modules/{lib.locked}/' not in html


def test_a_locked_modules_step_redirects_to_the_module_with_a_message(lib, client):
    response = client.get(f"/modules/{lib.locked}/{lib.locked}-1")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/modules/{lib.locked}")
    page = text(client.get(response.headers["Location"]))
    assert "This module is not open yet. Opens after you finish 'First steps'." in page


def test_unknown_module_and_step_are_404(lib, client):
    assert client.get("/modules/no-such-module").status_code == 404
    assert client.get(f"/modules/{lib.module}/no-such-step").status_code == 404
    # a real step under the wrong module
    assert client.get(f"/modules/{lib.locked}/{lib.steps[0]}").status_code == 404


# --------------------------------------------------------------------------- steps


def test_read_step_marks_done_and_goes_on_with_points_and_a_badge(lib, app, client):
    """It completes the step, flashes the points and the new badge, and moves to the
    next step; back and next links follow the module's order."""
    page = client.get(step_url(lib, 0))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Step 1 of 5" in text(page) and "Mark as done" in html
    assert f'href="{step_url(lib, 1)}" rel="next"' in html and 'rel="prev"' not in html
    response = client.post(step_url(lib, 0))
    assert response.status_code == 302 and response.headers["Location"].endswith(step_url(lib, 1))
    after = text(client.get(response.headers["Location"]))
    assert "Step done. +10 points" in after
    assert "New badge: First step" in after
    with app.app_context():
        assert count_of(StepProgress) == 1


def test_read_step_shows_panels_as_figures_with_alt_and_caption(lib, app, client):
    with app.app_context():
        module = db.session.scalar(select(services.Module).where(services.Module.key == lib.module))
        add_step(module, "read", key="panels-step", position=0, data={"panels": [
            {"image": "images/p1.svg", "src": "/modules/media/first-steps/images/p1.svg",
             "alt": "Two friends wave across a street", "caption_html": "<p>Hello there</p>"},
            {"image": "images/p2.svg", "src": "/modules/media/first-steps/images/p2.svg",
             "alt": "They sit on a bench", "caption_html": "<p>A chat</p>"}]})
        db.session.commit()
    html = client.get(f"/modules/{lib.module}/panels-step").get_data(as_text=True)
    assert html.count("<figure") == 2 and html.count("<figcaption>") == 2
    assert 'alt="Two friends wave across a street"' in html
    assert "Picture 1 of 2." in html and "<p>Hello there</p>" in html


def test_last_step_links_back_to_the_module(lib, client):
    html = client.get(step_url(lib, 4)).get_data(as_text=True)
    assert "Back to module" in html and 'rel="next"' not in html
    assert f'href="{step_url(lib, 3)}" rel="prev"' in html


def test_quiz_shows_radios_or_checkboxes_in_fieldsets(lib, client):
    html = client.get(step_url(lib, 1)).get_data(as_text=True)
    assert html.count("<fieldset") == 2
    assert "<legend>1. Is loneliness the same as being alone?</legend>" in html
    assert html.count('type="radio" id="q0') == 2
    assert html.count('type="checkbox" id="q1') == 3
    assert "Choose all that apply." in html and "Choose one answer." in html


def test_quiz_with_an_unanswered_question_keeps_the_other_answers(lib, app, client):
    response = client.post(step_url(lib, 1), data={"q1": ["0", "2"]})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Please check the form" in html and "Choose an answer." in html
    assert re.search(r'id="q1"\s+name="q1"\s+value="0" checked', html)
    assert re.search(r'id="q1-2"\s+name="q1"\s+value="2" checked', html)
    with app.app_context():
        assert count_of(services.QuizAttempt) == 0


def test_failed_quiz_shows_feedback_and_try_again(lib, app, client):
    response = client.post(step_url(lib, 1), data={"q0": "0", "q1": ["0"]})
    page, html = text(response), response.get_data(as_text=True)
    assert "Not quite this time" in page and "You got 0 of 2 questions right." in page
    assert "<p>Not quite.</p>" in html and "<p>Yes.</p>" in html
    assert "Try again" in page
    assert re.search(r'name="q0"\s+value="0" checked', html)
    with app.app_context():
        assert count_of(StepProgress) == 0


def test_passed_quiz_shows_score_and_completes_the_step(lib, app, client):
    response = client.post(step_url(lib, 1), data={"q0": "1", "q1": ["0", "2"]})
    page = text(response)
    assert "You passed" in page and "You got 2 of 2 questions right." in page
    assert "Quiz passed. +30 points" in page  # quiz passed 20 + step 10
    assert "✓ Right" in page
    with app.app_context():
        assert count_of(StepProgress) == 1


def test_action_plan_then_did_you_try_it_on_today(lib, app, client, auth):
    """It plans the action, says when it will ask, then asks on the today page; a rating
    out of range is refused with the answers kept, a good answer thanks them."""
    page = text(client.get(step_url(lib, 2)))
    assert "Send a message to an old friend." in page and "I'll try this" in page
    assert "in 3 days" in page
    response = client.post(step_url(lib, 2))
    assert response.status_code == 302
    assert "We'll ask you how it went on Saturday 7 March" in text(client.get("/modules/today"))
    assert "We will ask you how it went on Saturday 7 March" in text(client.get(step_url(lib, 2)))
    assert "Did you try it?" not in text(client.get("/modules/today"))

    clock.set_time(NOW + timedelta(days=3, hours=1))
    auth.login(CODE)
    today = client.get("/modules/today")
    assert "Did you try it?" in text(today)
    with app.app_context():
        plan_id = db.session.scalar(select(ActionPlan.id))
    prefix = f"check-{plan_id}"
    bad = client.post(f"/modules/actions/{plan_id}/check",
                      data={f"{prefix}-tried": "yes", f"{prefix}-rating": "9"})
    assert bad.status_code == 200
    html = bad.get_data(as_text=True)
    assert "Choose a number from 1 to 5." in html
    assert re.search(rf'name="{prefix}-tried"\s+value="yes" checked', html)
    missing = client.post(f"/modules/actions/{plan_id}/check", data={f"{prefix}-tried": "yes"})
    assert "Choose how it went, from 1 to 5." in text(missing)

    good = client.post(f"/modules/actions/{plan_id}/check",
                       data={f"{prefix}-tried": "yes", f"{prefix}-rating": "4"})
    assert good.status_code == 302
    after = text(client.get("/modules/today"))
    assert "Well done for trying it." in after and "+30 points" in after
    assert "New badge: Brave step" in after
    assert "Did you try it?" not in after
    with app.app_context():
        plan = db.session.get(ActionPlan, plan_id)
        assert (plan.tried, plan.rating) == (True, 4)


def test_action_check_of_someone_elses_plan_is_404(lib, app, client):
    with app.app_context():
        other = make_participant(code="T-0002", name="Still Meadow", arm="guided")
        step = db.session.scalar(select(services.Step).where(services.Step.key == lib.steps[2]))
        plan = services.plan_action(other, step)
        db.session.commit()
        plan_id = plan.id
    response = client.post(f"/modules/actions/{plan_id}/check",
                           data={f"check-{plan_id}-tried": "no"})
    assert response.status_code == 404


def test_reflection_saves_privately_and_keeps_text_on_error(lib, app, client):
    page = client.get(step_url(lib, 3))
    html = page.get_data(as_text=True)
    assert "Who did you feel close to this week?" in html
    assert ("Only you can see this, unless what you write suggests you may be at risk; then a "
            "clinician from the study team may read it.") in html
    assert 'aria-describedby="body-hint"' in html

    empty = client.post(step_url(lib, 3), data={"body": "   "})
    assert empty.status_code == 200 and "Write a few words first." in text(empty)
    too_long = "My sister. " * 500
    long = client.post(step_url(lib, 3), data={"body": too_long})
    assert "Please keep it under 5000 characters." in text(long)
    assert "My sister. My sister." in long.get_data(as_text=True)

    saved = client.post(step_url(lib, 3), data={"body": "My sister, on the phone."})
    assert saved.status_code == 302
    assert "Your reflection is saved." in text(client.get(saved.headers["Location"]))
    again = text(client.get(step_url(lib, 3)))
    assert "What you wrote here before (1)" in again and "My sister, on the phone." in again
    with app.app_context():
        assert count_of(JournalEntry) == 1


def test_checkpoint_rating_refuses_out_of_range_and_saves(lib, app, client):
    page = client.get(step_url(lib, 4)).get_data(as_text=True)
    assert "<legend>How helpful was this module for you?</legend>" in page
    assert "5 · Very much" in page
    bad = client.post(step_url(lib, 4), data={"rating": "7"})
    assert bad.status_code == 200 and "Choose a number from 1 to 5." in text(bad)
    good = client.post(step_url(lib, 4), data={"rating": "4"})
    assert good.status_code == 302 and good.headers["Location"].endswith(f"/modules/{lib.module}")
    assert "Thank you for your rating." in text(client.get(good.headers["Location"]))
    html = client.get(step_url(lib, 4)).get_data(as_text=True)
    assert re.search(r'name="rating"\s+value="4" checked', html)
    with app.app_context():
        assert db.session.scalar(select(CheckpointRating.rating)) == 4


def test_video_step_plays_a_local_file_with_captions(lib, app, client):
    with app.app_context():
        module = db.session.scalar(select(services.Module).where(services.Module.key == lib.module))
        add_step(module, "video", key="video-local", position=0, data={
            "video": {"file": "media/hi.mp4", "src": "/modules/media/first-steps/media/hi.mp4",
                      "type": "video/mp4"},
            "captions": {"file": "media/hi.vtt", "src": "/modules/media/first-steps/media/hi.vtt"},
            "url": None, "transcript_html": "<p>Hello, and welcome.</p>"})
        add_step(module, "video", key="video-link", position=0, data={
            "video": None, "captions": None, "url": "https://example.org/watch",
            "transcript_html": ""})
        db.session.commit()
    html = client.get(f"/modules/{lib.module}/video-local").get_data(as_text=True)
    assert "<video controls" in html
    assert '<source src="/modules/media/first-steps/media/hi.mp4" type="video/mp4">' in html
    assert re.search(r'<track kind="captions" src="/modules/media/first-steps/media/hi.vtt" '
                     r'srclang="en" label="English" default>', html)
    assert "Read the transcript" in html and "Mark as done" in html
    linked = client.get(f"/modules/{lib.module}/video-link").get_data(as_text=True)
    assert 'href="https://example.org/watch"' in linked and "<video" not in linked
    assert "opens in a new tab" in linked


# --------------------------------------------------------------------------- mood


def test_mood_is_logged_once_a_day_and_can_be_changed(lib, app, client):
    response = client.post("/modules/mood", data={"score": "4", "note": "Saw a friend"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/modules/today")
    page = text(client.get("/modules/today"))
    assert "Your mood is saved. +5 points" in page
    assert re.search(r"Today you said: \S+ Good \(4 of 5\)\.", page)
    assert "Your note: Saw a friend" in page
    assert "Change today's mood" in page
    client.post("/modules/mood", data={"score": "2", "note": ""})
    page = text(client.get("/modules/today"))
    assert re.search(r"Today you said: \S+ Low \(2 of 5\)\.", page) and "+5 points" not in page
    with app.app_context():
        [entry] = db.session.scalars(select(MoodEntry)).all()
        assert (entry.score, entry.note) == (2, None)


def test_mood_without_a_score_keeps_the_typed_note(lib, app, client):
    response = client.post("/modules/mood", data={"note": "A long, quiet day"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Choose how you feel today, from 1 to 5." in html
    assert "A long, quiet day</textarea>" in html
    bad = client.post("/modules/mood", data={"score": "8", "note": "still here"})
    assert "Choose how you feel today, from 1 to 5." in text(bad)
    with app.app_context():
        assert count_of(MoodEntry) == 0


# --------------------------------------------------------------------------- progress


def test_progress_page_shows_modules_points_level_badges_and_mood(lib, app, client):
    complete(app, lib, 0)
    for days_ago, score in ((2, 3), (1, 4)):
        clock.set_time(NOW - timedelta(days=days_ago))
        with app.app_context():
            from core.models import Participant
            from modules.mood import log_mood

            log_mood(db.session.get(Participant, lib.participant_id), score, "fine")
            db.session.commit()
    clock.set_time(NOW)
    response = client.get("/modules/progress")
    assert response.status_code == 200
    page, html = text(response), response.get_data(as_text=True)
    assert "0 of 2 modules finished" in page
    assert "20 points" in page or ">20<" in html
    assert "more points to reach level 2, Sprout" in page
    assert "First step" in page and "Earned" in page
    assert "Not yet" in page and "How to earn it:" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "<title" in html
    assert "<desc" in html and "Logged on 2 of the last 30 days." in html
    assert "Show the same as a table" in page and "4 · Good" in page
    assert "style=" not in html and "<script" not in html


def test_progress_page_without_moods_says_so(lib, client):
    page = text(client.get("/modules/progress"))
    assert "No moods logged yet." in page


# --------------------------------------------------------------------------- suggestions


def test_suggestion_shows_on_today_and_can_be_dismissed(lib, app, client):
    with app.app_context():
        from core.models import Participant

        peer = make_staff(Role.PEER_MODERATOR)
        participant = db.session.get(Participant, lib.participant_id)
        module = db.session.scalar(select(services.Module).where(services.Module.key == lib.module))
        suggestion = services.suggest(participant, module, actor=peer,
                                      note="This one helped others.")
        db.session.commit()
        suggestion_id = suggestion.id
    page = text(client.get("/modules/today"))
    assert "Suggested for you" in page and "This one helped others." in page
    response = client.post(f"/modules/suggestions/{suggestion_id}/dismiss")
    assert response.status_code == 302
    page = text(client.get("/modules/today"))
    assert "Removed from your suggestions." in page and "Suggested for you" not in page


# --------------------------------------------------------------------------- media


@pytest.fixture
def content(app, tmp_path: Path) -> Path:
    root = tmp_path / "content"
    (root / "first-steps" / "images").mkdir(parents=True)
    (root / "first-steps" / "images" / "p1.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><title>dot</title></svg>')
    (root / "first-steps" / "media").mkdir()
    (root / "first-steps" / "media" / "hi.vtt").write_text(
        "WEBVTT\n\n00:00.000 --> 00:01.000\nHi\n")
    (root / "secret.svg").write_text("<svg/>")
    app.config["MODULES_CONTENT_DIR"] = str(root)
    return root


def test_media_route_serves_a_modules_file(lib, content, client):
    response = client.get("/modules/media/first-steps/images/p1.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml" and b"<title>dot</title>" in response.data
    assert "sandbox" in response.headers["Content-Security-Policy"]
    captions = client.get("/modules/media/first-steps/media/hi.vtt")
    assert captions.status_code == 200 and captions.mimetype == "text/vtt"


@pytest.mark.parametrize("path", [
    "/modules/media/first-steps/../secret.svg",
    "/modules/media/first-steps/%2e%2e/secret.svg",
    "/modules/media/first-steps/images/../../secret.svg",
    "/modules/media/first-steps/images/missing.svg",
    "/modules/media/no-such-module/images/p1.svg",
    "/modules/media/first-steps/images/%2fetc/passwd",
])
def test_media_route_refuses_traversal_and_missing_files(lib, content, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert b"<svg" not in response.data


def test_media_route_is_for_signed_in_participants(lib, content, client, auth, app):
    auth.logout()
    assert client.get("/modules/media/first-steps/images/p1.svg").status_code == 302
    with app.app_context():
        make_staff(Role.RESEARCHER)
    assert auth.login("researcher@example.org").status_code == 302
    assert client.get("/modules/media/first-steps/images/p1.svg").status_code == 403


# --------------------------------------------------------------------------- markup


class PageCheck(HTMLParser):
    """Collects what the accessibility and CSP checks below need from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.headings: list[int] = []
        self.labels: set[str] = set()
        self.fields: list[str] = []
        self.fieldsets: list[bool] = []  # per open fieldset: has a legend

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "style" in found or tag in ("script", "style"):
            self.problems.append(f"inline style or script: <{tag}>")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "label" and found.get("for"):
            self.labels.add(found["for"])
        elif tag == "fieldset":
            self.fieldsets.append(False)
        elif tag == "legend" and self.fieldsets:
            self.fieldsets[-1] = True
        elif tag in ("input", "textarea", "select"):
            self._field(tag, found)

    def _field(self, tag: str, found: dict[str, str | None]) -> None:
        kind = found.get("type") or tag
        if kind in ("hidden", "submit", "button"):
            return
        self.fields.append(found.get("id") or f"<{tag} name={found.get('name')}> without id")
        if kind in ("radio", "checkbox") and not (self.fieldsets and self.fieldsets[-1]):
            self.problems.append(f"{kind} {found.get('name')} outside a fieldset with a legend")

    def handle_endtag(self, tag: str) -> None:
        if tag == "fieldset" and self.fieldsets:
            self.fieldsets.pop()

    def check(self) -> list[str]:
        problems = list(self.problems)
        problems += [f"no label for {field}" for field in self.fields if field not in self.labels]
        if self.headings[:1] != [1]:
            problems.append(f"the first heading is not h1: {self.headings[:3]}")
        problems += [f"heading jumps from h{a} to h{b}"
                     for a, b in itertools.pairwise(self.headings) if b > a + 1]
        return problems


def page_problems(response) -> list[str]:
    checker = PageCheck()
    checker.feed(response.get_data(as_text=True))
    return checker.check()


def test_every_page_is_labelled_ordered_and_csp_safe(lib, app, client):
    """It labels every input, puts every radio and checkbox in a fieldset with a legend,
    keeps headings in order, and uses no inline style or script, on every page."""
    complete(app, lib, 0)
    with app.app_context():
        from core.models import Participant

        participant = db.session.get(Participant, lib.participant_id)
        step = db.session.scalar(select(services.Step).where(services.Step.key == lib.steps[2]))
        clock.set_time(NOW - timedelta(days=5))
        services.plan_action(participant, step)
        clock.set_time(NOW)
        module = db.session.scalar(select(services.Module).where(services.Module.key == lib.module))
        services.suggest(participant, module, actor=make_staff(Role.PEER_MODERATOR), note="Hi")
        db.session.commit()
    client.post("/modules/mood", data={"score": "3"})
    responses = {path: client.get(path) for path in (
        "/modules/today", "/modules/", f"/modules/{lib.module}", f"/modules/{lib.locked}",
        "/modules/progress", *(step_url(lib, index) for index in range(5)))}
    responses["failed quiz"] = client.post(step_url(lib, 1), data={"q0": "0"})
    responses["empty reflection"] = client.post(step_url(lib, 3), data={"body": ""})
    responses["bad mood"] = client.post("/modules/mood", data={"note": "hm"})
    for name, response in responses.items():
        assert response.status_code == 200, name
        assert page_problems(response) == [], name


def test_a_flagged_reflection_shows_crisis_resources_at_once(lib, app, client, monkeypatch):
    """When risk screening flags a reflection, the author goes straight to the crisis
    page with a kind note (the entry itself is kept for the clinician)."""
    def flag(entry: JournalEntry) -> None:
        entry.screening = "flagged"

    monkeypatch.setattr(services, "REFLECTION_SCREENS", [flag])
    response = client.post(step_url(lib, 3), data={"body": "I do not want to be here."})
    assert response.status_code == 302 and response.headers["Location"].endswith("/help")
    page = text(client.get("/help"))
    assert "It sounds like things may be hard right now." in page
    with app.app_context():
        assert db.session.scalar(select(JournalEntry.screening)) == "flagged"
