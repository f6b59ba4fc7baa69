"""Assessment schedule and questionnaires: the study's timepoints and their windows, the
participant's questionnaire pages (answers saved item by item, scored by
``outcomes.scoring`` on submit), reminders in the app and by SMS, and the completion
counts the researcher dashboard and the adherence metrics read.

- ``models.py``     Timepoint, AssessmentResponse, ItemAnswer, AssessmentReminder
- ``schedule.py``   the schedule as data: export, check, apply, change guard; windows
- ``services.py``   statuses, due questionnaires, answering, submitting, completion counts
- ``strata.py``     stratum levels worked out from baseline scores; automatic randomisation
- ``jobs.py``       the reminder job (``outcomes.assessment_reminders``)
- ``views.py``      the participant's pages under ``/questionnaires``
- ``demo.py``       the demo study's schedule and answers
"""
