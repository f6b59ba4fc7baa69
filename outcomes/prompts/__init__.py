"""The SMS symptom-prompt protocol (EMA): a study's prompts as versioned YAML, planning
in each participant's local time, reply parsing and scoring, tailored feedback, STOP as
an SMS withdrawal, and response rates. The format is ``README.md`` in this folder.

Importing the package registers its activity-event kinds and its ``core.sms`` hooks
(inbound handler, STOP/START handler, HELP text).
"""

from outcomes.prompts import hooks  # noqa: F401
