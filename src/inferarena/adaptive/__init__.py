"""Test-time adaptive computation: formats and techniques, not model sources.

- `encoder`: the `adaptive_encoder` format (an encoder plus an early-exit or token-pruning policy) and the
  controller that runs it, on torch or per-stage ONNX graphs;
- `onnx_stages`: the `adaptive_onnx` format, one ONNX graph per stage for ONNX Runtime;
- `griffin`: context-conditioned FFN pruning for causal LMs (GRIFFIN and its hypernetwork twin).

Passes build these formats and runtimes run them; neither borrows from the other's plugins.
"""
