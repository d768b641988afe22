"""Pure-Python reference models of the compiled hot path (test oracles and benchmark baselines)."""
