"""Evaluators: compare a variant's outputs with the reference's."""
