"""The researcher's export form: which file format to download."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

FORMAT_CHOICES = [
    SelectChoice("csv", "CSV (UTF-8): opens in R, pandas, SPSS or a spreadsheet"),
    SelectChoice("parquet", "Parquet: typed columns for pandas, R (arrow) or Polars"),
    SelectChoice("dta", "Stata (.dta, format 118)"),
]


class ExportForm(FlaskForm):
    fmt = RadioField("File format", choices=FORMAT_CHOICES, default="csv",
                     validators=[InputRequired(message="Choose a file format.")])
    submit = SubmitField("Download the bundle")


class FreeTextForm(FlaskForm):
    """The identifiable free-text export: one source, for one stated purpose."""

    source = RadioField("Which free text", validators=[InputRequired(
        message="Choose which free text to export.")])
    purpose = RadioField("Purpose", validators=[InputRequired(
        message="Choose why you need it.")])
    submit = SubmitField("Download the free text")

    def __init__(self, *args, **kwargs) -> None:
        from outcomes.exports.freetext import PURPOSES, SOURCES

        super().__init__(*args, **kwargs)
        self.source.choices = [SelectChoice(k, v) for k, v in SOURCES.items()]
        self.purpose.choices = [SelectChoice(k, v) for k, v in PURPOSES.items()]


class RightForm(FlaskForm):
    """Give (1) or take away (0) a researcher's identifiable export right."""

    allowed = RadioField("Right", choices=[SelectChoice("1", "Give"),
                                           SelectChoice("0", "Take away")],
                         validators=[InputRequired()])
