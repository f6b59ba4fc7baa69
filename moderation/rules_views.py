"""Admin pages for watched words: list, add, edit, enable/disable, try a text, YAML
import and export."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from core import navigation
from core.access import role_required
from core.extensions import db
from core.forms import ConfirmForm, show_error
from core.roles import Role
from moderation import bp, rules
from moderation.forms import RuleForm, RulesImportForm, TryTextForm
from moderation.models import CATEGORIES, WatchedRule
from moderation.screening.matching import matching_rules
from moderation.screening.screener import decide

navigation.add("Watched words", "moderation.rules_list", {Role.ADMIN}, order=84)


def _rules_page(try_form: TryTextForm | None = None, verdict=None, matched=()):
    category = request.args.get("category", "")
    query = select(WatchedRule).order_by(WatchedRule.category, WatchedRule.severity,
                                         WatchedRule.id)
    if category in CATEGORIES:
        query = query.where(WatchedRule.category == category)
    return render_template("moderation/rules.html", rules=db.session.scalars(query).all(),
                           category=category, categories=CATEGORIES,
                           stored=rules.rule_count(), try_form=try_form or TryTextForm(),
                           verdict=verdict, matched=matched, form=ConfirmForm())


@bp.route("/rules")
@role_required(Role.ADMIN)
def rules_list():
    return _rules_page()


@bp.route("/rules/try", methods=["POST"])
@role_required(Role.ADMIN)
def rules_try():
    form = TryTextForm()
    verdict, matched = None, []
    if form.validate_on_submit():
        matched = matching_rules(rules.active_specs(), form.sample.data)
        verdict = decide(matched, form.channel.data)
    return _rules_page(form, verdict, matched)


@bp.route("/rules/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def rule_new():
    form = RuleForm()
    if form.validate_on_submit():
        try:
            rules.create_rule(form.rule_data(), actor=current_user)
        except rules.RuleInputError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Rule added.", "success")
            return redirect(url_for("moderation.rules_list"))
    return render_template("moderation/rule_form.html", form=form, rule=None)


@bp.route("/rules/<int:rule_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def rule_edit(rule_id: int):
    rule = db.get_or_404(WatchedRule, rule_id)
    form = RuleForm(obj=rule) if request.method == "GET" else RuleForm()
    if request.method == "GET":
        form.unless.data = "\n".join(rule.unless or [])
    if form.validate_on_submit():
        try:
            changed = rules.update_rule(rule, form.rule_data(), actor=current_user)
        except rules.RuleInputError as exc:
            db.session.rollback()
            show_error(form, exc)
        else:
            db.session.commit()
            flash("Rule saved." if changed else "Nothing changed.", "success")
            return redirect(url_for("moderation.rules_list"))
    return render_template("moderation/rule_form.html", form=form, rule=rule)


@bp.route("/rules/<int:rule_id>/toggle", methods=["POST"])
@role_required(Role.ADMIN)
def rule_toggle(rule_id: int):
    rule = db.get_or_404(WatchedRule, rule_id)
    if ConfirmForm().validate_on_submit():
        rules.set_enabled(rule, not rule.is_enabled, actor=current_user)
        db.session.commit()
        flash("Rule turned on." if rule.is_enabled else "Rule turned off.", "success")
    return redirect(url_for("moderation.rules_list"))


@bp.route("/rules/export")
@role_required(Role.ADMIN)
def rules_export():
    return Response(rules.export_yaml(), mimetype="application/yaml",
                    headers={"Content-Disposition": "attachment; filename=watched_words.yaml"})


@bp.route("/rules/import", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def rules_import():
    form = RulesImportForm()
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            result = rules.import_yaml(form.yaml_text.data, actor=current_user)
        except rules.RulesFileError as exc:
            db.session.rollback()
            problems = exc.problems
            form.yaml_text.errors = [*form.yaml_text.errors,
                                     "Nothing was imported: please fix the lines listed."]
        else:
            db.session.commit()
            flash(f"Imported: {result.created} new, {result.updated} changed, "
                  f"{result.unchanged} unchanged.", "success")
            return redirect(url_for("moderation.rules_list"))
    return render_template("moderation/rules_import.html", form=form, problems=problems)


@bp.route("/rules/load-shipped", methods=["POST"])
@role_required(Role.ADMIN)
def rules_load_shipped():
    if ConfirmForm().validate_on_submit():
        result = rules.load_shipped(actor=current_user)
        db.session.commit()
        flash(f"Shipped rules loaded: {result.created} new, {result.updated} changed.",
              "success")
    return redirect(url_for("moderation.rules_list"))
