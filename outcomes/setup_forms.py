"""Forms of the study set-up pages, and the translation between the set-up form and the
set-up document (``outcomes.setup``), so the page and the YAML import share one check."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from core.forms import timezone_choices
from outcomes.models import FEATURES
from outcomes.setup import Problem, Where, published_consent_labels

#: prefix of an arm's feature checkboxes
FEATURE_FIELD = "feature_"
MAX_YAML = 200_000


class ArmForm(Form):
    """One arm: a fieldset of its own on the page."""

    code = StringField("Code", validators=[Length(max=30)])
    name = StringField("Name", validators=[Length(max=120)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    ratio = IntegerField("Allocation ratio",
                         validators=[InputRequired("Give the allocation ratio, e.g. 1."),
                                     NumberRange(1, 20, "Use a whole number from 1 to 20.")])
    remove = BooleanField("Remove this arm when saving")

    def features(self) -> list[Any]:
        return [self[FEATURE_FIELD + name] for name in FEATURES]


for _name, _label in FEATURES.items():
    setattr(ArmForm, FEATURE_FIELD + _name, BooleanField(_label))


class SetupForm(FlaskForm):
    slug = StringField("Short name (slug)", validators=[Length(max=40)])
    name = StringField("Study name", validators=[Length(max=120)])
    code_prefix = StringField("Study code prefix", validators=[Length(max=10)])
    timezone = SelectField("Study time zone")
    contact = TextAreaField("Study contact", validators=[Length(max=2000)])
    sites = TextAreaField("Sites, one per line", validators=[Length(max=5000)])
    strata = TextAreaField("Strata, one factor per line", validators=[Length(max=5000)])
    randomise_on_baseline = BooleanField("Randomise each participant as soon as their baseline "
                                         "questionnaires are complete")
    consent_version = SelectField("Consent version")
    lost_after_days = IntegerField("Lost to follow-up after this many days without activity",
                                   validators=[InputRequired("Give a number of days."),
                                               NumberRange(1, 365, "Use 1 to 365 days.")])
    arms = FieldList(FormField(ArmForm))
    confirm = BooleanField("I confirm these changes to the intervention")
    add_arm = SubmitField("Add an arm")
    save = SubmitField("Save set-up")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()
        self.consent_version.choices = [SelectChoice("", "None chosen")] + [
            SelectChoice(label, label) for label in published_consent_labels()]


def form_data(data: dict[str, Any]) -> dict[str, Any]:
    """The set-up form's initial values from a set-up document."""
    study = data["study"]
    return {
        **{key: study[key] for key in ("slug", "name", "code_prefix", "timezone", "contact",
                                       "randomise_on_baseline", "lost_after_days")},
        "consent_version": study["consent_version"] or "",
        "sites": "\n".join(study["sites"]),
        "strata": "\n".join(_stratum_line(f) for f in data["strata"]),
        "arms": [{"code": arm["code"], "name": arm["name"], "description": arm["description"],
                  "ratio": arm["ratio"],
                  **{FEATURE_FIELD + k: v for k, v in arm["features"].items()}}
                 for arm in data["arms"]],
    }


def _stratum_line(factor: dict[str, Any]) -> str:
    if factor["factor"] == "site":
        return "site"
    return f"{factor['factor']}: {', '.join(factor['levels'])}"


def document_data(form: SetupForm) -> tuple[dict[str, Any], list[int]]:
    """The set-up document the form describes, and for each of its arms the index of the
    arm's fieldset on the form (removed arms are left out). The schedule and SMS protocol
    have their own pages, so they are not part of it (and stay as they are)."""
    study = {key: form[key].data for key in ("slug", "name", "code_prefix", "timezone",
                                             "randomise_on_baseline", "lost_after_days")}
    study.update(contact=_text(form.contact.data), consent_version=form.consent_version.data
                 or None, sites=_lines(form.sites.data))
    strata = [_stratum(line) for line in _lines(form.strata.data)]
    arms, places = [], []
    for index, entry in enumerate(form.arms):
        arm = entry.form  # not ``entry.name``: that is the FieldList entry's own name
        if arm.remove.data:
            continue
        arms.append({"code": (arm.code.data or "").strip(), "name": (arm.name.data or "").strip(),
                     "description": _text(arm.description.data), "ratio": arm.ratio.data,
                     "features": {name: arm[FEATURE_FIELD + name].data for name in FEATURES}})
        places.append(index)
    return {"study": study, "strata": strata, "arms": arms}, places


def _text(value: str | None) -> str:
    return (value or "").replace("\r\n", "\n").strip()


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _stratum(line: str) -> dict[str, Any]:
    name, _, levels = line.partition(":")
    if name.strip() == "site" and not levels.strip():
        return {"factor": "site"}
    return {"factor": name.strip(), "levels": [v.strip() for v in levels.split(",") if v.strip()]}


def field_for(form: SetupForm, where: Where, places: list[int]) -> Any | None:
    """The form field a problem at ``where`` in the document belongs on."""
    if len(where) >= 2 and where[0] == "study" and where[1] in form:
        return form[str(where[1])]
    if where[:1] == ("strata",):
        return form.strata
    if len(where) >= 3 and where[0] == "arms" and isinstance(where[1], int) \
            and where[1] < len(places):
        arm = form.arms[places[where[1]]].form
        name = str(where[2])
        if name == "features":
            name = FEATURE_FIELD + (str(where[3]) if len(where) > 3 else next(iter(FEATURES)))
        return arm._fields.get(name)
    return None


def place_problems(form: SetupForm, problems: list[Problem], places: list[int]) -> list[str]:
    """Put each problem on its field; return those that belong to none."""
    left = []
    for problem in problems:
        target = field_for(form, problem.where, places)
        if target is None:
            left.append(problem.message)
        else:
            target.errors = [*target.errors, problem.message]
    return left


class ImportForm(FlaskForm):
    text = TextAreaField("Set-up document (YAML)", validators=[Optional(),
                                                              Length(max=MAX_YAML)])
    upload = FileField("Or upload a YAML file")
    confirm = BooleanField("I confirm the changes to the intervention listed")
    dry_run = SubmitField("Dry run: show changes")
    submit = SubmitField("Import and save")


def error_items(form: SetupForm) -> list[tuple[str, str, str]]:
    """(field id, label, first error) of every field with an error, arms included, in page
    order: the error summary at the top of the set-up page links to each."""
    items = []
    for f in form:
        if f.type == "FieldList":
            for number, entry in enumerate(f, start=1):
                items += [(sub.id, f"Arm {number}: {sub.label.text}", sub.errors[0])
                          for sub in entry.form if sub.errors]
        elif f.errors and f.type == "CSRFTokenField":
            items.append(("setup-save", "The form", "it expired; please save again."))
        elif f.errors:
            items.append((f.id, f.label.text, f.errors[0]))
    return items
