"""Two runtimes on one device, measured side by side into two runs, and their comparison.

The request names the device and carries the plan (``harness.measure.regress.RegressPlan``:
the runtimes, the design, its budget); the measuring is ``harness.measure.regress``, in one
measurement session on the device, into the request's store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.measure.regress import measure_regress
from harness.measure.session import MeasurementSession
from harness.measure.targets import resolve_target
from results.store import Store, default_db_path

if TYPE_CHECKING:
    from harness.measure.requests import RegressRequest
    from results.compare import Comparison


def regress_runtimes(request: RegressRequest) -> Comparison:
    """Measure both runtimes of the request on its device; the comparison of the two runs."""
    device = resolve_target(request.device, request.inventory)
    with (
        MeasurementSession(
            device, request.settings, keep_workdir=request.keep_workdir, cooldown=request.cooldown
        ) as session,
        Store.open(request.db or default_db_path()) as store,
    ):
        session.attach(store)
        return measure_regress(session, request.plan, request.specs, request.threads)
