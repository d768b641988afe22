"""Venue connectors. mmfast has one: Lighter (``mmfast.connector.lighter``)."""
