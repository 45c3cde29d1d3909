"""Run inside the Triton environment (numpy<2, nvidia-pytriton): serve our ONNX models with pytriton.

Each `--model NAME=FOLDER` is bound with its ONNX inputs and outputs, Triton's dynamic batcher
(`--max-batch-size`, `--delay-us`) and `--instances` copies of the callable (an instance group of
that count on CPU). SIGTERM becomes pytriton's clean shutdown, which unloads the models and removes
its workspace and shared memory.
"""

from __future__ import annotations

import argparse
import signal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--delay-us", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--model", action="append", required=True, help="NAME=FOLDER")
    args = parser.parse_args()

    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    from inferarena.serving.backend import OrtModel

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)
    config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                          grpc_port=args.grpc_port, metrics_address="127.0.0.1", metrics_port=args.metrics_port,
                          allow_metrics=True, allow_gpu_metrics=False, allow_cpu_metrics=True, exit_timeout_secs=5)
    triton = Triton(config=config, workspace=args.workspace,
                    security_config=TritonSecurityConfig(restricted_endpoints=[]))
    for spec in args.model:
        name, _, folder = spec.partition("=")
        models = [OrtModel(folder) for _ in range(args.instances)]
        inputs, outputs = models[0].signature()

        def make(model):
            @batch
            def infer(**feeds):
                return model.predict(feeds)

            return infer

        triton.bind(
            model_name=name, infer_func=[make(m) for m in models],
            inputs=[Tensor(name=n, dtype=d, shape=(-1,) * (rank - 1)) for n, d, rank in inputs],
            outputs=[Tensor(name=n, dtype=d, shape=(-1,) * (rank - 1)) for n, d, rank in outputs],
            config=ModelConfig(max_batch_size=args.max_batch_size,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=args.delay_us)),
            strict=True,
        )
    triton.serve()


if __name__ == "__main__":
    main()
