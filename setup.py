"""Build the compiled hot path (mmfast._core.*) from cython_src/.

Release builds turn bounds checks off. MMFAST_DEBUG_BUILD=1 builds a checked debug build instead:
bounds and wraparound checks, initialized-check, line tracing (coverage/profilers), -O0 -g.
MMFAST_ANNOTATE=1 also writes Cython's HTML annotation beside each generated C file
(build/cython/cython_src/mmfast/_core/<module>.html, or build/cython-debug/... for a debug build).
"""

from __future__ import annotations

import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG_BUILD = os.environ.get("MMFAST_DEBUG_BUILD", "") not in ("", "0")
ANNOTATE = os.environ.get("MMFAST_ANNOTATE", "") not in ("", "0")

# One directives dict for every module.
DIRECTIVES: dict[str, object] = {
    "language_level": 3,
    "boundscheck": DEBUG_BUILD,
    "wraparound": DEBUG_BUILD,
    "initializedcheck": DEBUG_BUILD,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": DEBUG_BUILD,
    "profile": False,
}

if DEBUG_BUILD:
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    cflags = ["-O0", "-g3", "-UNDEBUG"]
else:
    macros = []
    cflags = ["-O3"] if sys.platform != "win32" else ["/O2"]

# Listed explicitly: one entry per compiled module.
MODULES = ["book", "clock", "feed", "gate", "pipeline", "plan", "quote", "signer", "units"]
# Development aid: MMFAST_BUILD_ONLY=book,quote rebuilds a subset in place.
_only = os.environ.get("MMFAST_BUILD_ONLY", "")
if _only:
    MODULES = [m for m in MODULES if m in _only.split(",")]

_LSIG_HEADERS = [
    f"cython_src/mmfast/_core/lsig/{h}" for h in ("field.h", "poseidon2.h", "curve.h", "pool.h")
]

extensions = [
    Extension(
        f"mmfast._core.{name}",
        [f"cython_src/mmfast/_core/{name}.pyx"],
        define_macros=macros,
        extra_compile_args=cflags,
        # signer's C headers (lsig/*.h) sit beside it; header-only, compiled into the module.
        include_dirs=["cython_src/mmfast/_core"],
        depends=_LSIG_HEADERS if name == "signer" else [],
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["cython_src"],
        compiler_directives=DIRECTIVES,
        # Separate C output per flavour, so a debug build never reuses release C files.
        build_dir="build/cython-debug" if DEBUG_BUILD else "build/cython",
        annotate=ANNOTATE,
        # Up-to-date C is not regenerated, and only generation writes the annotation.
        force=ANNOTATE,
    ),
)
