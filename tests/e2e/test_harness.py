"""The journeys' own machinery, without a browser: the time-zone choice that keeps SMS
prompts inside 08:00-21:00 at any hour, the guided-site choice, the chromium rule and
the axe verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from outcomes import randomisation
from outcomes.models import Arm, Study
from tests.e2e import axe
from tests.e2e.conftest import require_browser
from tests.e2e.timezones import morning_zone
from tests.e2e.trial_site import guided_site


@pytest.mark.parametrize("hour", range(24))
def test_morning_zone_exists_at_every_hour(hour: int) -> None:
    """It finds a zone with a local hour of 9 or 10 whatever the UTC hour (summer too)."""
    for day in (datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)):
        now = day + timedelta(hours=hour, minutes=59)
        assert now.astimezone(ZoneInfo(morning_zone(now))).hour in (9, 10)


def test_morning_zone_prefers_london() -> None:
    assert morning_zone(datetime(2026, 1, 15, 9, 30, tzinfo=UTC)) == "Europe/London"


def test_morning_zone_says_when_nothing_fits() -> None:
    with pytest.raises(LookupError, match="no time zone"):
        morning_zone(datetime(2026, 1, 15, 12, tzinfo=UTC), hours=range(25, 26))


@pytest.mark.parametrize("seed", ["a" * 64, "0123456789abcdef" * 4, "seed-three"])
def test_guided_site_starts_with_the_guided_arm(seed: str) -> None:
    study = Study(slug="s", name="S", code_prefix="S", strata=["site"], sites=["North"])
    study.arms = [Arm(code="guided", name="G", ratio=1), Arm(code="self", name="O", ratio=1)]
    site = guided_site(study, seed)
    assert site.startswith("E2E clinic ")
    stratum = randomisation.stratum_key(study, {"site": site})
    assert randomisation.allocation_sequence(seed, stratum, [("guided", 1), ("self", 1)],
                                             1)[0] == "guided"


def test_missing_chromium_fails_in_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="never download a browser"):
        require_browser(tmp_path / "chromium", ci=True)


def test_missing_chromium_skips_outside_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_browser(tmp_path / "chromium", ci=False)


def test_present_chromium_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "chromium").touch()
    require_browser(tmp_path / "chromium", ci=True)


def _audit(*violations: tuple[str, str]) -> axe.AxeAudit:
    audit = axe.AxeAudit(checked=["/a", "/b"])
    audit.violations = [axe.Violation("/a", rule, impact, "help", ("main > div",))
                        for rule, impact in violations]
    return audit


def test_axe_passes_moderate_findings() -> None:
    _audit(("region", "moderate"), ("landmark-one-main", "minor")).assert_clean()


def test_axe_fails_serious_findings_with_a_readable_list() -> None:
    with pytest.raises(AssertionError) as failure:
        _audit(("color-contrast", "serious"), ("region", "moderate")).assert_clean()
    message = str(failure.value)
    assert "1 serious or critical accessibility violation(s) on 1 of 2 pages" in message
    assert "/a: [serious] color-contrast (help) at main > div" in message
    assert "region" not in message


def test_axe_fails_when_a_page_went_unchecked() -> None:
    audit = _audit()
    audit.unchecked.append("http://127.0.0.1/forum/")
    with pytest.raises(AssertionError, match="never checked with axe: http://127.0.0.1/forum/"):
        audit.assert_clean()


def test_a_server_error_fails_the_journey() -> None:
    audit = _audit()
    audit.server_errors.append("500 http://127.0.0.1/forum/")
    with pytest.raises(AssertionError, match="server errors: 500 http://127.0.0.1/forum/"):
        audit.assert_clean()
