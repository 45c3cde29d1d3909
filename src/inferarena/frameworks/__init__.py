"""Framework helpers that plugins of more than one axis share, one module per framework: a model
source, a pass and a runtime all open TensorFlow, say. Plugins import these instead of each other,
so no axis borrows another's plugin. Each module imports its framework inside functions only:
importing inferarena loads none.
"""
