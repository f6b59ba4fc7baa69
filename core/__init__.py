"""The platform core: ``create_app`` and the services every domain uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from core.config import load_config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get(
        "KINSHIP_INSTANCE_PATH", str(Path(__file__).resolve().parent.parent / "instance")))
    app.config.from_mapping(load_config(Path(app.instance_path)))
    if test_config:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from core.security import check_production_config

    check_production_config(app)
    if app.config["PROXY_HOPS"]:
        # behind nginx: take the client address and scheme from the proxy's headers, so
        # per-address sign-in throttling sees real clients (not one shared 127.0.0.1)
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)  # type: ignore[method-assign]
    register_extensions(app)
    register_blueprints(app)
    register_hooks(app)
    register_errorhandlers(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from core import audit, changes, events, models, scheduler  # noqa: F401 - register the tables
    from core.database import configure_engine
    from core.extensions import csrf, db, login_manager, migrate

    configure_engine(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"),
                     render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "core.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = None  # server-side sessions do this job (core.sessions)

    from core import sessions, transactions

    sessions.init_app(app)
    transactions.init_app(app)


def register_blueprints(app: Flask) -> None:
    import forum
    import moderation
    import modules
    import outcomes
    from core.sms.views import bp as sms_bp
    from core.views import bp as core_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(sms_bp)
    for package in (modules, forum, moderation, outcomes):
        app.register_blueprint(package.bp)


def register_hooks(app: Flask) -> None:
    from core.security import add_security_headers, refuse_nul_bytes
    from core.templating import field_attrs, inject_globals, localtime, url_maker

    app.after_request(add_security_headers)
    app.before_request(refuse_nul_bytes)
    app.context_processor(inject_globals)
    app.add_template_filter(localtime, "localtime")
    app.add_template_global(field_attrs, "field_attrs")  # imported macros see globals only
    app.add_template_global(url_maker, "url_maker")


def register_errorhandlers(app: Flask) -> None:
    from core.views.errors import register

    register(app)


def register_cli(app: Flask) -> None:
    from core.backup import register as register_backup
    from core.cli import register
    from core.sms.cli import sms_cli
    from moderation.cli import moderation_cli
    from modules.cli import modules_cli
    from outcomes.cli import demo_cli, outcomes_cli

    register(app)
    register_backup(app)
    app.cli.add_command(demo_cli)
    app.cli.add_command(modules_cli)
    app.cli.add_command(moderation_cli)
    app.cli.add_command(outcomes_cli)
    app.cli.add_command(sms_cli)
