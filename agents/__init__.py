"""Faust agents and the pure domain core (``agents.domain``) they call."""
