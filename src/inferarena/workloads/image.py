"""Image workloads: real photos, preprocessed the way the model was trained.

The photos are the ones bundled in scikit-image (`skimage.data`: chelsea the cat, coffee, a rocket,
an astronaut, a motorcycle...) and scikit-learn (`china.jpg`, `flower.jpg`), so nothing is
downloaded. There are 14 of them, too few for a sample library, so sample i is photo i mod 14: the
first pass over the photos uses the canonical center crop (shorter side, resized to the model's
size), and later passes a random crop of 50-100% of the shorter side, flipped half the time, with
a fixed seed. The notes say so.

Samples are kept as uint8 and normalized as `collate` batches them ((pixel − mean) / std, NCHW
float32): that work is part of every timed batch, as it is in a real service, and it costs about
3 ms per 32 images here, against ~200 ms of model time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inferarena.artifacts import Artifact
from inferarena.config import ShapeStrategy, WorkloadConfig
from inferarena.errors import RuntimeUnavailable
from inferarena.workloads.base import Batch, Workload

# skimage.data loaders whose files ship inside the wheel (others need pooch and a network).
SKIMAGE_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "hubble_deep_field",
                  "immunohistochemistry", "retina", "colorwheel", "camera", "clock", "coins")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def photos() -> dict[str, np.ndarray]:
    """Each bundled photo as HxWx3 uint8 RGB, by name."""
    try:
        import skimage.data
        from sklearn.datasets import load_sample_image
    except ImportError:
        raise RuntimeUnavailable("image workloads need scikit-image and scikit-learn",
                                 "pip install 'inferarena[vision]'") from None
    out = {}
    for name in SKIMAGE_PHOTOS:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
        out[name] = _rgb(image)
    for name in SKLEARN_PHOTOS:
        out[name.removesuffix(".jpg")] = _rgb(load_sample_image(name))
    return out


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8)


def crop(image: np.ndarray, size: int, scale: float = 1.0, at: tuple[float, float] = (0.5, 0.5),
         flip: bool = False) -> np.ndarray:
    """A square crop of `scale` × the shorter side, its center at relative position `at`, resized to
    size × size (antialiased), HxWx3 uint8."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    side = max(1, int(round(min(h, w) * scale)))
    top = int(round((h - side) * at[0]))
    left = int(round((w - side) * at[1]))
    square = image[top : top + side, left : left + side]
    out = resize(square, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[:, ::-1] if flip else out


class ImageWorkload(Workload):
    strategies = (ShapeStrategy.fixed,)

    def __init__(self, images: np.ndarray, labels: list[str], input_name: str, mean: float, std: float,
                 notes: list[str]):
        self.images = images  # (samples, H, W, 3) uint8
        self.labels = labels  # which photo each sample came from
        self.input_names = [input_name]
        self.mean, self.std = mean, std
        self.notes = notes

    @classmethod
    def build(cls, artifact: Artifact, config: WorkloadConfig) -> ImageWorkload:
        spec = artifact.meta["image"]
        size = spec["size"]
        found = photos()
        names = list(found)
        rng = np.random.default_rng(config.seed)
        images, labels = [], []
        for i in range(config.num_samples):
            name = names[i % len(names)]
            if i < len(names):
                images.append(crop(found[name], size))
            else:
                images.append(crop(found[name], size, scale=rng.uniform(0.5, 1.0),
                                   at=(rng.uniform(), rng.uniform()), flip=bool(rng.integers(2))))
            labels.append(name)
        notes = [f"{config.num_samples} samples from {len(names)} bundled photos (scikit-image, scikit-learn): "
                 f"center crops first, then random crops of 50-100% of the shorter side, flipped half the time; "
                 f"resized to {size}x{size}, normalized (x - {spec['mean']:g}) / {spec['std']:g}"]
        return cls(np.stack(images), labels, artifact.meta["inputs"][0]["name"], spec["mean"], spec["std"], notes)

    def __len__(self) -> int:
        return len(self.images)

    def _normalize(self, images: np.ndarray) -> np.ndarray:
        x = np.subtract(images, np.float32(self.mean), dtype=np.float32)
        x *= np.float32(1.0 / self.std)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def collate(self, indices: Sequence[int], strategy: ShapeStrategy) -> Batch:
        return {self.input_names[0]: self._normalize(self.images[list(indices)])}

    def encode(self, items: list[Any], strategy: ShapeStrategy = ShapeStrategy.fixed) -> Batch | None:
        """Photos (HxWx3 uint8, any size) as one batch: center crop, resize, normalize."""
        size = self.images.shape[1]
        return {self.input_names[0]: self._normalize(np.stack([crop(_rgb(i), size) for i in items]))}

    def input_shapes(self, strategy: ShapeStrategy) -> dict[str, list[int]]:
        _, h, w, c = self.images.shape
        return {self.input_names[0]: [-1, c, h, w]}

    def describe(self) -> dict[str, Any]:
        return {"kind": "image", "source": "bundled photos", "samples": len(self),
                "photos": sorted(set(self.labels)), "sample_shape": list(self.images.shape[1:]),
                "assumptions": self.notes}
