"""The client address behind a reverse proxy."""

from core import create_app
from tests.conftest import _test_config


def _remote_addr_app(app_config):
    app = create_app(app_config)

    @app.route("/_addr")
    def addr():
        from flask import request

        return request.remote_addr or ""

    addr.access = "public"
    return app


def test_proxy_hops_take_the_client_address_from_x_forwarded_for(tmp_path):
    """It reads the real client from X-Forwarded-For when PROXY_HOPS=1, so throttling per
    address does not lump every visitor together as the proxy."""
    config = _test_config(f"sqlite:///{tmp_path / 'p.sqlite3'}", tmp_path) | {"PROXY_HOPS": 1}
    client = _remote_addr_app(config).test_client()
    response = client.get("/_addr", headers={"X-Forwarded-For": "203.0.113.7"},
                          environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.text == "203.0.113.7"


def test_without_proxy_hops_forwarded_headers_are_ignored(tmp_path):
    """It ignores X-Forwarded-For by default, so a client cannot pick its own address."""
    config = _test_config(f"sqlite:///{tmp_path / 'p.sqlite3'}", tmp_path)
    client = _remote_addr_app(config).test_client()
    response = client.get("/_addr", headers={"X-Forwarded-For": "203.0.113.7"},
                          environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert response.text == "198.51.100.9"
