#!/usr/bin/env python3
"""`mmfast diagnose tp-mismatch` as a script (same flags; see docs/diagnostics.md)."""

import sys

from mmfast.diagnostics.tp import main_tp_mismatch

if __name__ == "__main__":
    sys.exit(main_tp_mismatch())
