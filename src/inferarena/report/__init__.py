"""Renderers: results are data; these turn a stored run into a terminal table or a JSON document."""
