"""The Lighter connector."""
