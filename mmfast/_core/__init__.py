"""Compiled hot path: ``book`` (L2 order book), ``clock`` (tick scheduler), ``quote`` (quotes),
``plan`` (the requote planner).

The modules are Cython extensions built from ``cython_src/mmfast/_core``; their typed
interfaces are the ``.pyi`` stubs beside this file.
"""
