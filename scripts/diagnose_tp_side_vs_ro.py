#!/usr/bin/env python3
"""`mmfast diagnose tp-side-vs-ro` as a script (same flags; see docs/diagnostics.md)."""

import sys

from mmfast.diagnostics.tp import main_tp_side_vs_ro

if __name__ == "__main__":
    sys.exit(main_tp_side_vs_ro())
