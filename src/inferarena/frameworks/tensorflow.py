"""TensorFlow, as the SavedModel source, the TF/TFLite conversion passes and the TensorFlow runtime
all open it: the import (quiet, or a clear install hint) and the serving signature they agree on."""

from __future__ import annotations

import os

from inferarena.errors import RuntimeUnavailable

# The signature a SavedModel is served through, read and written by the same name everywhere.
SIGNATURE = "serving_default"


def import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter, not errors
    try:
        import tensorflow as tf
    except ImportError:
        raise RuntimeUnavailable("this step needs TensorFlow", "pip install 'inferarena[tensorflow]'") from None
    return tf
