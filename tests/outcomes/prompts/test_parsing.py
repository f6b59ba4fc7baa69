"""Reading answers out of real-looking text replies."""

from __future__ import annotations

import pytest

from outcomes.prompts.parsing import OK, OUT_OF_RANGE, UNREADABLE, parse_reply
from outcomes.prompts.protocol import Answer

SCALE = Answer("scale", 0, 10)
YESNO = Answer("yesno", 0, 1)
UCLA = Answer("digits", 1, 3, 3, "ucla3")

CASES = [
    # 0-10 loneliness scale
    (SCALE, "7", OK, 7),
    (SCALE, " 7 ", OK, 7),
    (SCALE, "0", OK, 0),
    (SCALE, "10", OK, 10),
    (SCALE, "seven", OK, 7),
    (SCALE, "Ten", OK, 10),
    (SCALE, "zero", OK, 0),
    (SCALE, "I'd say 7 today", OK, 7),
    (SCALE, "I’d say a 4 tbh", OK, 4),
    (SCALE, "7/10", OK, 7),
    (SCALE, "10/10 lonely", OK, 10),
    (SCALE, "about 6 out of 10", OK, 6),
    (SCALE, "8!", OK, 8),
    (SCALE, "Probably 3", OK, 3),
    (SCALE, "5 I guess", OK, 5),
    (SCALE, "its a 2 today", OK, 2),
    (SCALE, "feeling like a nine", OK, 9),
    (SCALE, "7, 7", OK, 7),
    (SCALE, "11", OUT_OF_RANGE, 11),
    (SCALE, "twenty", OUT_OF_RANGE, 20),
    (SCALE, "100", OUT_OF_RANGE, 100),
    (SCALE, "7 or 8", UNREADABLE, None),
    (SCALE, "between 3 and 4", UNREADABLE, None),
    (SCALE, "6-7", UNREADABLE, None),
    (SCALE, "7.5", UNREADABLE, None),
    (SCALE, "not sure", UNREADABLE, None),
    (SCALE, "yes", UNREADABLE, None),
    (SCALE, "", UNREADABLE, None),
    (SCALE, "😔", UNREADABLE, None),
    # yes / no
    (YESNO, "Y", OK, True),
    (YESNO, "y", OK, True),
    (YESNO, "Yes", OK, True),
    (YESNO, "YES!!", OK, True),
    (YESNO, "yeah", OK, True),
    (YESNO, "Yeah I did", OK, True),
    (YESNO, "yep, with my sister", OK, True),
    (YESNO, "yesss", OK, True),
    (YESNO, "Sure did", OK, True),
    (YESNO, "yes, 2 actually", OK, True),
    (YESNO, "N", OK, False),
    (YESNO, "no", OK, False),
    (YESNO, "No.", OK, False),
    (YESNO, "nope", OK, False),
    (YESNO, "nah", OK, False),
    (YESNO, "no, not really", OK, False),
    (YESNO, "Not really", OK, False),
    (YESNO, "I didn't", OK, False),
    (YESNO, "I did not", OK, False),
    (YESNO, "no one to talk to", OK, False),
    (YESNO, "nooo", OK, False),
    (YESNO, "yes and no", UNREADABLE, None),
    (YESNO, "kind of", UNREADABLE, None),
    (YESNO, "7", UNREADABLE, None),
    (YESNO, "maybe", UNREADABLE, None),
    (YESNO, "yesterday I did", UNREADABLE, None),
    # UCLA-3, three digits 1-3
    (UCLA, "1 2 1", OK, [1, 2, 1]),
    (UCLA, "121", OK, [1, 2, 1]),
    (UCLA, "3,3,2", OK, [3, 3, 2]),
    (UCLA, "2-1-3", OK, [2, 1, 3]),
    (UCLA, "1 1 1 thanks", OK, [1, 1, 1]),
    (UCLA, "two two three", OK, [2, 2, 3]),
    (UCLA, "1 4 1", OUT_OF_RANGE, [1, 4, 1]),
    (UCLA, "2 2", UNREADABLE, None),
    (UCLA, "1 2 3 4", UNREADABLE, None),
    (UCLA, "often", UNREADABLE, None),
]


@pytest.mark.parametrize(("answer", "text", "status", "value"), CASES,
                         ids=[f"{a.type}:{t!r}" for a, t, _, _ in CASES])
def test_a_reply_reads_as_expected(answer, text, status, value):
    parsed = parse_reply(text, answer)
    assert parsed.status == status
    assert parsed.value == value


def test_the_table_has_at_least_forty_replies():
    assert len(CASES) >= 40
