"""A few weeks of made-up forum life for the demo study: warm posts, talk-it-out threads
with suggestions (some marked as helpful), comments, replies and reactions among the demo
participants whose arm has the forum, and a welcome from the peer moderator.

Everything goes through the real services with the clock frozen at each moment, so events,
points and notifications follow as they would for real. The showcase participant
("Quiet Harbour", DEMO-0001) has a thread of their own with replies waiting, so a visitor
signing in sees unread notifications.

Transaction contract: flushes, never commits; the caller (``outcomes.demo.seed``) commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from core import clock
from core.clock import utcnow
from core.extensions import db
from core.models import Participant, User
from core.roles import Role
from forum import services
from forum.models import Comment, Post
from outcomes.services import features_for

#: (days ago, hour, author index, kind, title, body, [(author index, comment, replies)],
#:  reactions as (reader index, kind), index of the suggestion the author marks helpful)
Thread = tuple[int, int, int, str, str, str, list[tuple[int, str, list[tuple[int, str]]]],
               list[tuple[int, str]], int | None]

WELCOME = ("Hello and welcome, everyone. I'm Kit, one of the peer supporters here. This is "
           "a place to share how you're doing, good days and hard ones. Be kind, take what "
           "helps, and if you ever feel unsafe, the **Need help now?** link is on every page.")

THREADS: list[Thread] = [
    (12, 10, 1, "post", "",
     "Small win: I said good morning to the man at the bus stop. He said it back and we "
     "chatted about the rain for a minute. Felt *really* nice.",
     [(2, "That's not small at all. Well done!", [(1, "Thank you, it made my day.")]),
      (3, "I love this. The bus stop chat is underrated.", [])],
     [(2, "proud_of_you"), (3, "proud_of_you"), (0, "thinking_of_you")], None),
    (9, 19, 0, "talk_it_out", "How do I get back in touch with an old friend?",
     "We used to talk every week and then it just stopped, maybe two years ago. I think "
     "about messaging her but it feels awkward after so long.",
     [(2, "Maybe keep it light, like *\"saw this and thought of you\"* with a photo or a "
          "song you both liked. No need to explain the gap.",
      [(0, "Oh, that's a lovely idea. There's a song we always sang in the car.")]),
      (4, "I did this last year. I just said I'd been thinking about her and hoped she was "
          "well. She replied the same day!", []),
      (3, "It might help to remember she may feel awkward too. You'd be doing you both a "
          "favour.", [])],
     [(2, "thinking_of_you"), (4, "me_too")], 0),
    (6, 21, 3, "post", "",
     "Evenings are the hardest for me. Once the day is over the flat gets so quiet.\n\n"
     "Things that help a bit:\n- radio on low\n- a call with my sister on Sundays\n"
     "- writing down one good thing", [(1, "Evenings are hard for me too. The list is a "
                                        "good idea, I'm going to try the one good thing.",
                                        [])],
     [(1, "me_too"), (0, "me_too"), (2, "helpful")], None),
    (4, 11, 4, "talk_it_out", "Ideas for meeting people when you don't drink?",
     "Everything near me seems to be in a pub. I'd like to meet people but I'm not "
     "comfortable there.",
     [(1, "The library near me has a knitting circle and a board-games afternoon. Worth "
          "asking at yours.", []),
      (2, "Volunteering! I help at a community garden on Saturdays and there's always tea "
          "afterwards.", [(4, "I hadn't thought of that. Is it hard to start?"),
                          (2, "Not at all, you just turn up. Nobody minds if you're new.")])],
     [(0, "thinking_of_you")], 1),
    (2, 15, 2, "post", "",
     "Made soup and took some round to my neighbour. She's invited me for tea next week. "
     "Nervous but happy.", [(0, "That's wonderful. Enjoy the tea!", [])],
     [(0, "proud_of_you"), (1, "proud_of_you"), (4, "proud_of_you")], None),
    (1, 20, 0, "post", "",
     "Today was a bit flat. Didn't leave the house. Trying to be gentle with myself about it.",
     [(3, "Sending you a hug. Flat days happen; tomorrow is a new one.", []),
      (1, "Being gentle with yourself *is* doing something. Thinking of you.", [])],
     [(3, "thinking_of_you"), (1, "thinking_of_you"), (2, "me_too")], None),
]


def forum_people() -> list[User]:
    """Demo participants whose arm has the forum and who have set up their account, the
    showcase first."""
    participants = db.session.scalars(
        select(Participant).join(User, User.id == Participant.user_id)
        .where(Participant.status == "active", User.password_hash.is_not(None))
        .order_by(Participant.study_code)).all()
    return [p.user for p in participants if features_for(p.user).get("forum")]


def seed_demo_forum(*, now: datetime | None = None) -> int:
    """Write the demo threads up to ``now``; return how many posts were written (0 when
    the forum already has posts or fewer than five people have the forum)."""
    now = now or utcnow()
    people = forum_people()
    if db.session.scalar(select(Post.id).limit(1)) is not None or len(people) < 5:
        return 0
    peer = db.session.scalar(select(User).where(User.role == Role.PEER_MODERATOR)
                             .order_by(User.id))
    if peer is not None:
        with clock.frozen_at(now - timedelta(days=14)):
            services.create_post(peer, kind="post", body=WELCOME)
    for thread in THREADS:
        _write_thread(thread, people, now)
    return len(THREADS) + (peer is not None)


def _write_thread(thread: Thread, people: list[User], now: datetime) -> None:
    days, hour, author, kind, title, body, comments, reactions, helpful = thread
    start = (now - timedelta(days=days)).replace(hour=hour, minute=5, second=0, microsecond=0)
    start = min(start, now - timedelta(hours=2))
    with clock.frozen_at(start):
        post = services.create_post(people[author], kind=kind, title=title, body=body).item
    at = start
    suggestions: list[Comment] = []
    for who, text, replies in comments:
        at += timedelta(minutes=37)
        with clock.frozen_at(at):
            comment = services.create_comment(people[who], post, body=text).item
        suggestions.append(comment)  # type: ignore[arg-type]
        for reply_who, reply_text in replies:
            at += timedelta(minutes=23)
            with clock.frozen_at(at):
                services.create_comment(people[reply_who], post, body=reply_text,
                                        parent=comment)  # type: ignore[arg-type]
    for who, reaction in reactions:
        at += timedelta(minutes=11)
        with clock.frozen_at(at):
            services.toggle_reaction(post, actor=people[who], kind=reaction)  # type: ignore[arg-type]
    if helpful is not None:
        with clock.frozen_at(at + timedelta(hours=1)):
            services.toggle_helpful(suggestions[helpful], actor=people[author])
