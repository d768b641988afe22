"""Operator diagnostics: read-only checks of what the venue holds (docs/diagnostics.md).

* ``tp-mismatch``: the account stream's open orders against REST ``accountActiveOrders``.
* ``tp-side-vs-ro``: open orders on the take-profit side (the side that closes the position)
  against those that are reduce-only.

Run them as ``mmfast diagnose <tool>`` or ``python scripts/diagnose_<tool>.py``.
"""

from mmfast.diagnostics.tp import (
    EXIT_DIFFERENCES,
    EXIT_ERROR,
    EXIT_OK,
    FieldDiff,
    MismatchReport,
    TpSideReport,
    check_mismatch,
    check_tp_side,
    compare_orders,
    main_tp_mismatch,
    main_tp_side_vs_ro,
    tp_mismatch,
    tp_side_of,
    tp_side_vs_ro,
)
from mmfast.diagnostics.venue import (
    DiagError,
    DiagTarget,
    OrderView,
    VenueSession,
    order_view,
    position_lots,
    resolve_target,
)

__all__ = [
    "EXIT_DIFFERENCES",
    "EXIT_ERROR",
    "EXIT_OK",
    "DiagError",
    "DiagTarget",
    "FieldDiff",
    "MismatchReport",
    "OrderView",
    "TpSideReport",
    "VenueSession",
    "check_mismatch",
    "check_tp_side",
    "compare_orders",
    "main_tp_mismatch",
    "main_tp_side_vs_ro",
    "order_view",
    "position_lots",
    "resolve_target",
    "tp_mismatch",
    "tp_side_of",
    "tp_side_vs_ro",
]
