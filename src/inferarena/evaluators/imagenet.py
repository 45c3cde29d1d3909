"""ImageNet sanity check on bundled photos: is the cat still a cat?

Eight of the bundled photos (see `workloads.image`) show something ImageNet has a class for. The
metric is top-5 accuracy over them: the share of photos with one of their classes among the five
highest logits. Eight photos measure no accuracy to a percent; they catch a variant that quantization
or a converter broke while its outputs still correlate with the reference. Top-1 and top-5 agreement
with the FP32 reference, over the whole evaluation set, are in the fidelity columns.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from inferarena.evaluators.task import Evaluator

# Photo -> the ImageNet-1k classes (index: name) that count as right for it.
LABELS: dict[str, dict[int, str]] = {
    "chelsea": {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat"},
    "coffee": {967: "espresso", 968: "cup", 504: "coffee mug"},
    "rocket": {657: "missile", 744: "projectile", 812: "space shuttle"},
    "stereo_motorcycle": {665: "moped", 670: "motor scooter"},
    "camera": {872: "tripod"},
    "clock": {409: "analog clock", 892: "wall clock"},
    "china": {698: "palace", 442: "bell cote", 663: "monastery"},
    "flower": {985: "daisy"},
}


class ImagenetPhotos(Evaluator):
    name = "imagenet_photos"
    task = "image_classification"
    metric = "top5_accuracy"
    default: ClassVar[bool] = True

    def inputs(self) -> list[np.ndarray]:
        from inferarena.workloads.image import photos

        found = photos()
        return [found[name] for name in LABELS]

    def score(self, embeddings: np.ndarray) -> float:
        top5 = np.argsort(-embeddings, axis=1)[:, :5]
        hits = [bool(set(row.tolist()) & set(classes)) for row, classes in zip(top5, LABELS.values(), strict=True)]
        return float(np.mean(hits))
