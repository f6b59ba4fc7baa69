"""The SMS scheduler jobs ``sms.dispatch`` and ``sms.reconcile`` (listed in
``core.scheduler.JOBS``). Both commit as they go; see ``core.sms.dispatch``."""

from __future__ import annotations

from core.sms import dispatch as dispatching
from core.sms import reconcile as reconciling


def dispatch() -> dict[str, object]:
    """Send every due outbox row."""
    return dispatching.dispatch()


def reconcile() -> dict[str, int]:
    """Settle texts whose send ended without a clear answer."""
    return reconciling.reconcile()
