"""Trackers: context managers that observe a measurement window and return a dataclass of figures."""
