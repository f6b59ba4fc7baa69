"""Give the demo study a recruiting site whose next allocation is the guided arm.

Randomisation is concealed and random by design, but the participant journey has to
reach the forum, which only the guided arm has. Run once after the demo is seeded
(``python -m tests.e2e.trial_site`` with the server's environment): it adds the first
site named ``E2E clinic <n>`` whose allocation sequence (a pure function of the study's
seed, see ``outcomes.randomisation``) starts with the guided arm, and prints its name.
The journey then enrols its participant at that site through the researcher's page.
"""

from __future__ import annotations

from sqlalchemy import select

from core import create_app
from core.extensions import db
from outcomes import randomisation
from outcomes.models import AllocationSeed, Study

GUIDED = "guided"


def guided_site(study: Study, seed: str) -> str:
    design = [(arm.code, arm.ratio) for arm in study.arms]
    for number in range(1, 200):
        name = f"E2E clinic {number}"
        stratum = randomisation.stratum_key(study, {"site": name})
        if randomisation.allocation_sequence(seed, stratum, design, 1)[0] == GUIDED:
            return name
    raise RuntimeError("no site name gives the guided arm first")  # 2**-199: never


def main() -> None:
    app = create_app()
    with app.app_context():
        study = db.session.scalar(select(Study).where(Study.slug == "demo"))
        seed = db.session.scalar(select(AllocationSeed.seed)
                                 .where(AllocationSeed.study_id == study.id))
        site = guided_site(study, seed)
        if site not in study.sites:
            study.sites = [*study.sites, site]
        db.session.commit()
    print(site)


if __name__ == "__main__":
    main()
