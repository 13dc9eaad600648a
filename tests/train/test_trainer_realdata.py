"""End to end on real data: the ImageVec example of docs/training.md, trained on Multi30k test_2016 (English
captions with ResNet-50 features), learns caption->image retrieval on held-out images, early-stopping on R@10."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmbench.train import TrainConfig, encode, read_metrics, seed_everything

TRAIN = 800  # first 800 pairs train, last 200 are the held-out retrieval pool


@pytest.fixture(scope="module")
def multi30k(shared_data):
    root = shared_data / "multi30k"
    features = np.load(root / "features" / "test_2016_flickr-resnet50-avgpool.npy").astype(np.float32)
    with gzip.open(root / "task1" / "raw" / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as handle:
        captions = [re.findall(r"[a-z]+", line.lower()) for line in handle.read().splitlines()]
    assert features.shape == (1000, 2048) and len(captions) == 1000
    mean, std = features[:TRAIN].mean(0), features[:TRAIN].std(0) + 1e-3
    vocab: dict[str, int] = {}
    for words in captions[:TRAIN]:
        for word in words:
            vocab.setdefault(word, len(vocab))
    return torch.from_numpy((features - mean) / std), captions, vocab


def _documented_example() -> dict:
    """Run the first code block of docs/training.md, so the documented plugin is what gets tested."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(code, "docs/training.md", "exec", dont_inherit=True), namespace)  # noqa: S102 - our own docs
    return namespace


def _padded_ids(captions: list[list[str]], vocab: dict[str, int]) -> torch.Tensor:
    """Word ids (1-based; 0 pads) of each caption, unknown words dropped."""
    rows = [[vocab[w] + 1 for w in words if w in vocab] or [0] for words in captions]
    width = max(len(row) for row in rows)
    return torch.tensor([row + [0] * (width - len(row)) for row in rows])


def test_trainer_documented_example_learns_retrieval_on_multi30k(multi30k, tmp_path):
    images, captions, vocab = multi30k
    example = _documented_example()
    tokens = _padded_ids(captions, vocab)
    train = (tokens[:TRAIN], images[:TRAIN])
    held_out = (tokens[TRAIN:], images[TRAIN:])
    config = example["ImageVecConfig"](
        dim=64, train=TrainConfig(epochs=12, batch_size=100, lr=3e-3, early_stopping_patience=3, progress=False))

    seed_everything(0)
    untrained = example["ImageVec"](len(vocab) + 1, 2048, 64)
    model, result = example["train_imagevec"](*train, held_out, config, tmp_path)

    def recall_at_10(module) -> float:
        queries = F.normalize(encode(module.words, held_out[0], 64), dim=-1)
        pool = F.normalize(encode(module.image, held_out[1], 64), dim=-1)
        scores = queries @ pool.T
        return float(((scores > scores.diag()[:, None]).sum(1) < 10).float().mean())

    chance = 10 / 200
    assert recall_at_10(untrained) < 2 * chance
    assert result.best_metric > 3 * chance  # 0.19 observed (chance 0.05); a ridge map on all 2048 dims reaches ~0.75
    assert recall_at_10(model) == result.best_metric  # the best weights were restored
    losses = [r["loss/ranking"] for r in read_metrics(tmp_path / "metrics.jsonl") if "loss/ranking" in r]
    assert losses[-1] < losses[0] / 2
    if result.stopped_early:  # overfitting 800 pairs: held-out recall peaks after a few epochs
        assert result.steps == result.best_step + 3 * 8
