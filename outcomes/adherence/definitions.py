"""What each adherence and dropout metric means: the codebook, as data.

``DEFINITIONS`` is read by the researcher dashboard and by the export codebook; every
field of ``outcomes.adherence.Adherence`` that is a metric has an entry here (a test
checks it). Which activity-event kinds count as what is fixed here too, as explicit
lists: a kind added later by another package changes no metric until it is listed.
"""

from __future__ import annotations

from typing import Any

#: participant-initiated use of the platform: these make a day "active" and their
#: absence makes a participant "stopped using". System awards (points, badges, levels),
#: randomisation, things done *to* the participant (a moderator's contact, a helpful mark
#: received) and outcome measurement (SMS replies, questionnaires) are not use.
USE_KINDS: frozenset[str] = frozenset({
    "login", "invite_accepted", "profile_updated",
    "step_completed", "quiz_answered", "quiz_passed", "action_planned", "action_checked",
    "reflection_written", "checkpoint_rated", "module_completed", "mood_logged",
    "post_written", "comment_written", "reaction_given", "helpful_marked",
})
#: use of the intervention itself (not just signing in): one of these after
#: randomisation means the participant "received the intervention" (CONSORT)
INTERVENTION_KINDS: frozenset[str] = USE_KINDS - {"login", "invite_accepted", "profile_updated"}
#: events counted one by one: metric name -> event kind
COUNTED_KINDS: dict[str, str] = {
    "logins": "login",
    "posts": "post_written",
    "comments": "comment_written",
    "reactions": "reaction_given",
    "moderator_contacts": "moderator_contact",
    "sms_answered": "sms_answered",
}
#: outcome-measurement kinds whose details the metrics read
TIMEPOINT_COMPLETED = "timepoint_completed"
MODULE_COMPLETED = "module_completed"
#: every kind the metrics read, so one query fetches them all
READ_KINDS: frozenset[str] = USE_KINDS | set(COUNTED_KINDS.values())

#: no use for this many whole days (24-hour periods) means "stopped using"
DEFAULT_STOPPED_AFTER_DAYS = 14

_PERIOD = ("in the period: from randomisation (or the start of the trial week) up to the "
           "period end (now, or the end of the trial week), the end excluded")


def _metric(label: str, type_: str, values: str, text: str) -> dict[str, str]:
    return {"label": label, "type": type_, "values": values, "definition": text}


DEFINITIONS: dict[str, dict[str, Any]] = {
    "period_start": _metric(
        "Period start", "datetime", "UTC timestamp",
        "Start of the period: the moment of randomisation for the whole-trial period; for "
        "trial week k, the start of the participant's local day 7(k-1) days after the local "
        "day of randomisation (but never before randomisation)."),
    "period_end": _metric(
        "Period end", "datetime", "UTC timestamp",
        "End of the period (excluded): the time the figures were computed for the "
        "whole-trial period; for trial week k, the start of the local day 7k days after the "
        "local day of randomisation, or the computation time if earlier."),
    "week": _metric(
        "Trial week", "integer", "1, 2, ... or empty for the whole-trial period",
        "Week since randomisation. Week 1 is the participant's local day of randomisation "
        "and the six local days after it (their own time zone)."),
    "steps_completed": _metric(
        "Steps completed", "integer", "0 or more",
        "Distinct active module steps the participant had completed before the period end "
        "(cumulative, including any completed before randomisation). Steps since removed from "
        "the content are not counted."),
    "steps_completed_in_period": _metric(
        "Steps completed in the period", "integer", "0 or more",
        "Distinct active module steps first completed " + _PERIOD + "."),
    "steps_available": _metric(
        "Steps available", "integer", "0 or more",
        "Active steps of the modules open to the participant at the period end, by the "
        "platform's own unlock rules (after another module, at a level, from a trial week; a "
        "module once started stays open). 0 when the arm has no modules."),
    "adherence_ratio": _metric(
        "Adherence ratio (steps)", "number", "0 to 1; empty when no step is available",
        "steps_completed / steps_available at the period end."),
    "modules_completed": _metric(
        "Modules completed", "integer", "0 or more",
        "Active modules completed before the period end: every active step done, or a "
        "'module completed' event recorded (which keeps a module completed when steps are "
        "added to it later)."),
    "modules_available": _metric(
        "Modules available", "integer", "0 or more",
        "Active modules with at least one step that were open to the participant at the "
        "period end (as for steps_available)."),
    "module_adherence_ratio": _metric(
        "Adherence ratio (modules)", "number", "0 to 1; empty when no module is available",
        "modules_completed / modules_available at the period end."),
    "core_modules_completed": _metric(
        "Core modules completed", "integer", "0 or more",
        "Active modules marked core in the content that were completed before the period "
        "end."),
    "core_modules_total": _metric(
        "Core modules", "integer", "0 or more",
        "Active modules marked core in the content (the same for everyone)."),
    "all_core_completed": _metric(
        "All core modules completed", "boolean", "true, false; empty when the arm has no "
        "modules or the content has no core module",
        "Whether every active core module was completed before the period end."),
    "active_days": _metric(
        "Active days", "integer", "0 or more",
        "Calendar days in the participant's own time zone with at least one use event "
        + _PERIOD + ". Use events: " + ", ".join(sorted(USE_KINDS)) + ". Points, badges, "
        "levels, randomisation, contacts received, SMS replies and questionnaires are not "
        "use."),
    "active_weeks": _metric(
        "Active weeks", "integer", "0 or more",
        "Trial weeks (see week) with at least one active day " + _PERIOD + "."),
    "weeks_in_period": _metric(
        "Trial weeks in the period", "integer", "0 or more",
        "Trial weeks that overlap the period (the current, partial week included)."),
    "logins": _metric(
        "Sign-ins", "integer", "0 or more", "'login' events " + _PERIOD + "."),
    "posts": _metric(
        "Forum posts", "integer", "0 or more", "'post_written' events " + _PERIOD + "."),
    "comments": _metric(
        "Forum comments", "integer", "0 or more",
        "'comment_written' events " + _PERIOD + "."),
    "reactions": _metric(
        "Forum reactions given", "integer", "0 or more",
        "'reaction_given' events " + _PERIOD + "."),
    "sms_answered": _metric(
        "SMS prompts answered", "integer", "0 or more; empty when not known",
        "Whole-trial period: answered prompts as counted by the SMS prompt protocol "
        "(outcomes.prompts). Trial weeks: 'sms_answered' events in the week."),
    "sms_delivered": _metric(
        "SMS prompts delivered", "integer", "0 or more; empty when not known",
        "Prompts the carrier reported delivered, as counted by the SMS prompt protocol "
        "(undelivered prompts do not count). Whole-trial period only."),
    "sms_response_rate": _metric(
        "SMS response rate", "number", "0 to 1; empty when nothing was delivered",
        "sms_answered / sms_delivered (whole-trial period only)."),
    "assessments_completed": _metric(
        "Assessments completed", "integer", "0 or more; empty when not known",
        "Questionnaires completed so far, as counted by the assessment schedule "
        "(outcomes.assessments). Whole-trial period only."),
    "assessments_due": _metric(
        "Assessments due", "integer", "0 or more; empty when not known",
        "Questionnaires due so far by the assessment schedule. Whole-trial period only."),
    "moderator_contacts": _metric(
        "Moderator contacts received (dose of guidance)", "integer", "0 or more",
        "'moderator_contact' events (a check-in or a moderator message received) "
        + _PERIOD + "."),
    "received_intervention": _metric(
        "Received the intervention", "boolean", "true, false",
        "At least one intervention event after randomisation and before the period end. "
        "Intervention events: " + ", ".join(sorted(INTERVENTION_KINDS)) + " (sign-ins alone "
        "do not count)."),
    "last_active_at": _metric(
        "Last use", "datetime", "UTC timestamp; empty when never",
        "The newest use event before the period end (any time, also before randomisation)."),
    "days_without_use": _metric(
        "Days without use", "integer", "0 or more",
        "Whole 24-hour periods from the later of randomisation and the last use event to "
        "the period end."),
    "stopped_using": _metric(
        "Stopped using (non-usage attrition)", "boolean", "true, false",
        "days_without_use is at least N (N = 14 unless the analysis says otherwise). Kept "
        "apart from study dropout: a participant who stopped using may still answer "
        "questionnaires, and is then not a dropout. Withdrawal is recorded separately."),
    "post_treatment_completed": _metric(
        "Post-treatment assessment completed", "boolean",
        "true, false; empty when the schedule names no post-treatment timepoint",
        "A 'timepoint_completed' event for the schedule's post-treatment timepoint before "
        "the period end."),
    "study_dropout": _metric(
        "Study dropout", "boolean", "true, false; empty when the schedule names no "
        "post-treatment timepoint",
        "No completed post-treatment assessment, and either withdrawn from the study or the "
        "post-treatment timepoint's window has closed (missed). Kept apart from stopped "
        "using."),
    "withdrawn_from": _metric(
        "Withdrawn from", "text", "comma-separated: intervention, study, sms; empty when none",
        "Withdrawals recorded before the period end (outcomes.participants)."),
    "arm": _metric(
        "Arm", "text", "the arm's code", "The arm the participant was randomised to."),
}
