"""Forms of the questionnaire pages (CSRF; the answer itself is checked by the service,
which names the item at fault)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField

from outcomes.instruments import Instrument, Item


class AnswerForm(FlaskForm):
    #: choices come from the instrument; a value outside them is refused by
    #: ``services.parse_answer`` with a message naming the question, not by WTForms
    answer = RadioField(validate_choice=False)

    def raw_answer(self) -> str | None:
        return self.answer.raw_data[0] if self.answer.raw_data else None


def answer_form(instrument: Instrument, item: Item, value: int | None, *,
                bound: bool = False) -> AnswerForm:
    """The form for one question; ``bound`` reads the posted data (POST)."""
    data = {"answer": None if value is None else str(value)}
    form = AnswerForm(data=data) if bound else AnswerForm(formdata=None, data=data)
    form.answer.choices = [(str(option.value), option.label) for option in instrument.options]
    form.answer.label.text = item.text
    return form
