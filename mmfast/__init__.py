"""mmfast: a low-latency market-making bot for the Lighter perpetuals exchange."""

__version__ = "0.1.0"
