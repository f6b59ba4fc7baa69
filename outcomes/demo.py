"""The demo study that ``make run`` seeds on first run.

Made-up people with a few weeks of realistic activity, so every page has
something to show. Demo conveniences (the shared password, two-step codes shown
on screen) exist only while ``KINSHIP_DEMO`` is on, which the production guard
refuses.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import func, select

from core import accounts, audit
from core.clock import utcnow
from core.events import record_event
from core.extensions import db
from core.models import ConsentRecord, Participant, User
from core.names import display_key
from core.passwords import hash_password
from core.roles import Role
from outcomes import randomisation
from outcomes.models import Arm, Study

DEMO_PASSWORD = "kinship-demo-2026"  # noqa: S105 - demo mode only, printed by make run
STAFF = [
    ("admin@demo.kinship.test", Role.ADMIN, "Robin (admin)"),
    ("researcher@demo.kinship.test", Role.RESEARCHER, "Dr Ada Okafor"),
    ("clinician@demo.kinship.test", Role.CLINICIAN, "Dr Sam Patel"),
    ("clinician2@demo.kinship.test", Role.CLINICIAN, "Jo Rivers, CPN"),
    ("peer@demo.kinship.test", Role.PEER_MODERATOR, "Kit (peer supporter)"),
]
DEMO_PARTICIPANT = ("DEMO-0001", "Quiet Harbour")
SITES = ("North clinic", "South clinic")
NICKNAMES = [
    "Tea Drinker", "Night Owl", "Blue Kettle", "Moss Walker", "Paper Boat", "Slow River",
    "Garden Snail", "Hill Fog", "Lantern", "Sea Glass", "Cloud Watcher", "Bookworm",
    "Little Wren", "Puzzle Piece", "Quiet Fox", "Warm Socks", "Pebble", "Rain Song",
    "Oak Leaf", "Sunday Toast", "Kite Flyer", "Harbour Light", "Cocoa Mug", "Starling",
    "Bramble", "Dandelion", "Tide Pool", "Soft Landing", "Pine Cone", "Morning Dew",
]
CONSENT_TEXT = """\
**Kinship feasibility study: information for participants (demo)**

Thank you for thinking about taking part. Please read this carefully.

**What the study is about.** We want to learn whether an online programme with short
activities, a peer community and support from trained moderators can help people feel less
lonely.

**What taking part means.** For 12 weeks you can use Kinship as much or as little as you like.
We will ask you to fill in some questionnaires at the start, after 6 and 12 weeks, and after
24 weeks. If you agree, we will also send you short text messages asking how you feel.

**Your information.** We store what you do in Kinship so we can understand how people use it.
Researchers only see your study code, never your name. What you write in private reflections
is screened for words that suggest you might be at risk; if something worrying is found, a
clinician from the study team may read it and contact you. Moderators can read what you post
in the community.

**Risks.** Talking about loneliness can bring up difficult feelings. Crisis support is linked
on every page. Kinship is not an emergency service.

**Your choice.** Taking part is voluntary. You can stop at any time without giving a reason,
and stopping will not affect your care. You can stop text messages alone by replying STOP.
"""


def seed(participants: int = 30, *, rng: random.Random | None = None) -> bool:
    """Seed the demo study; return False (and do nothing) if any study exists."""
    if db.session.scalar(select(func.count(Study.id))):
        return False
    rng = rng or random.Random(2026)
    now = utcnow()
    password_hash = hash_password(DEMO_PASSWORD)
    staff = {}
    for email, role, name in STAFF:
        user = User(email=email, role=role, display_name=name, display_key=display_key(name),
                    password_hash=password_hash, is_demo=True)
        if role in (Role.ADMIN, Role.RESEARCHER, Role.CLINICIAN):
            user.mfa_secret = pyotp.random_base32()
            user.mfa_enabled_at = now
        db.session.add(user)
        staff[email] = user
    db.session.flush()
    admin = staff["admin@demo.kinship.test"]
    researcher = staff["researcher@demo.kinship.test"]
    for user in staff.values():
        audit.record("user.created", actor=None, target=user, role=str(user.role), demo=True)
    consent = accounts.publish_consent("1.0", CONSENT_TEXT, actor=admin)

    study = Study(slug="demo", name="Kinship feasibility study (demo)", code_prefix="DEMO",
                  consent_version_id=consent.id,
                  timezone="Europe/London", sites=list(SITES), strata=["site"],
                  contact="The Kinship study team: kinship-study@example.org, weekdays 9-17.")
    db.session.add(study)
    db.session.flush()
    guided = Arm(study_id=study.id, code="guided", name="Kinship with moderators", ratio=1,
                 description="Modules, the peer forum, SMS prompts and moderator check-ins.",
                 features={"modules": True, "gamification": True, "forum": True,
                           "checkins": True, "sms": True})
    selfguided = Arm(study_id=study.id, code="self", name="Kinship on your own", ratio=1,
                     description="Modules and SMS prompts, without the forum or check-ins.",
                     features={"modules": True, "gamification": True, "forum": False,
                               "checkins": False, "sms": True})
    db.session.add_all([guided, selfguided])
    db.session.flush()
    # a real seed and sequence, so a researcher can randomise new demo participants
    randomisation.open_enrolment(study, actor=researcher)
    study.enrolment_opened_at = now - timedelta(days=42)

    moderators = [staff["peer@demo.kinship.test"], staff["clinician@demo.kinship.test"]]
    for index in range(participants):
        _seed_participant(index, study, (guided, selfguided), moderators, researcher,
                          consent, password_hash, rng, now)
    from modules.demo import seed_demo  # a few weeks of module use on top of the study

    seed_demo(db.session.scalars(select(Participant).where(Participant.study_id == study.id)).all(),
              rng=rng, now=now)
    _seed_other_parts(study, staff, rng, now)
    return True


def _seed_other_parts(study: Study, staff: dict[str, User], rng: random.Random,
                      now: datetime) -> None:
    """The schedule with past answers, the SMS protocol, the forum and the on-call rota."""
    from forum.demo import seed_demo_forum
    from moderation.alerts import add_to_rota
    from moderation.checkins.demo import seed_demo_checkins
    from outcomes.assessments.demo import seed_demo_schedule
    from outcomes.prompts.demo import seed_demo_protocol

    seed_demo_schedule(study, rng=rng, now=now)
    seed_demo_protocol(study)
    seed_demo_forum(now=now)
    admin = staff["admin@demo.kinship.test"]
    for email in ("clinician@demo.kinship.test", "clinician2@demo.kinship.test"):
        add_to_rota(staff[email], phone=None, actor=admin)
    from moderation.message_demo import seed_demo_messages

    showcase = db.session.scalar(select(Participant).where(
        Participant.study_id == study.id, Participant.study_code == DEMO_PARTICIPANT[0]))
    seed_demo_messages(showcase, now=now)
    seed_demo_checkins(study, now=now)


def _seed_participant(index, study, arms, moderators, researcher, consent, password_hash,
                      rng, now) -> None:
    code = f"DEMO-{index + 1:04d}"
    enrolled = now - timedelta(days=rng.randint(21, 42)) if index else now - timedelta(days=30)
    moderator = moderators[index % len(moderators)]
    issued = accounts.enrol_participant(study, actor=researcher, study_code=code,
                                        site=rng.choice(SITES),
                                        moderator=moderator)
    participant: Participant = issued.invite.participant
    participant.enrolled_at = enrolled
    if index and index % 10 == 9:
        return  # a few people have not accepted their invite yet
    user = participant.user
    name = DEMO_PARTICIPANT[1] if index == 0 else NICKNAMES[index % len(NICKNAMES)]
    if index >= len(NICKNAMES):
        name = f"{name} {index}"
    user.display_name, user.display_key = name, display_key(name)
    user.password_hash = password_hash
    user.is_demo = True
    participant.timezone = rng.choice(["Europe/London", "Europe/London", "Europe/Dublin"])
    issued.invite.used_at = enrolled + timedelta(hours=rng.randint(2, 48))
    participant.arm_id = arms[index % 2].id
    participant.status = "active"
    participant.randomised_at = issued.invite.used_at + timedelta(days=1)
    participant.status_changed_at = participant.randomised_at
    db.session.add(ConsentRecord(user_id=user.id, consent_version_id=consent.id,
                                 agreed_at=issued.invite.used_at, sms_consent=index % 3 != 0))
    participant.sms_consent = index % 3 != 0
    record_event(participant, "invite_accepted", at=issued.invite.used_at)
    record_event(participant, "consent_given", at=issued.invite.used_at, version=consent.version)
    _seed_logins(participant, issued.invite.used_at, rng, now, engaged=index == 0)


def _seed_logins(participant, start, rng, now, *, engaged: bool) -> None:
    """Logins that thin out over time for most people, as in real trials."""
    stop_after = (now - start).days if engaged else rng.choice([3, 8, 15, 25, 40, 60])
    day = start
    while day < now and (day - start).days <= stop_after:
        if engaged or rng.random() < 0.6:
            record_event(participant, "login", at=day + timedelta(hours=rng.randint(8, 20)))
        day += timedelta(days=rng.choice([1, 1, 2, 3]))


def logins_text() -> str:
    lines = ["Demo logins (password for every account: " + DEMO_PASSWORD + ")"]
    code, name = DEMO_PARTICIPANT
    lines.append(f"  participant    {code}  (or display name '{name}')")
    for email, role, _ in STAFF:
        lines.append(f"  {role.label.lower():<15}{email}")
    lines.append("Admin, researcher and clinicians use two-step sign-in; in demo mode the code")
    lines.append("is shown on the sign-in page.")
    return "\n".join(lines)
