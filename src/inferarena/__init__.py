"""inferarena: find the fastest, cheapest and most efficient way to serve a model.

Importing the package loads no ML framework; each runtime imports its own inside its plugin.
"""

__version__ = "0.1.0"
