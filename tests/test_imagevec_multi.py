"""imagevec-multi on the real data: each objective learns its own signal far above chance and above a
one-step control, dropping an objective removes what it brings, the ablations declare and cover only
what they train on, and a resumed run is bit-identical. Tiny configs (en + de, 32-d, a few hundred
small steps) keep each run to seconds; the full-size runs are the leaderboards' (docs/imagevec-multi.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from mmbench_plugins import imagevec_multi

import mmbench
from mmbench.data.multi30k import load_multi30k
from mmbench.errors import ConfigError
from mmbench.kinds.retrieval_sources import emoji_pairs
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.plugins import load_plugins
from mmbench.runner import resolve_model
from mmbench.text import tokenize

pytestmark = [
    pytest.mark.skipif(SHARED_DATA is None or not (SHARED_DATA / "multi30k" / "task1").is_dir(),
                       reason="needs the Multi30k task-1 captions under ../shared/data or $MMBENCH_DATA"),
    pytest.mark.usefixtures("one_torch_thread"),  # see tests/conftest.py
]
TINY = {"languages": ["en", "de"], "dim": 32, "hidden": 64, "image_sources": ["emoji"], "image_repeats": [1],
        "context_sources": ["multi30k"], "translation_sources": ["multi30k"], "context_batch": 1024,
        "translation_batch": 256, "train": {"batch_size": 256, "max_steps": 300, "progress": False}}
ONLY = {"image": {"context_weight": 0.0, "translation_weight": 0.0},
        # Four times the centres and five times the lr of TINY: skip-gram needs many pairs per word.
        "context": {"image_weight": 0.0, "translation_weight": 0.0, "context_batch": 4096, "train": {"lr": 0.05}},
        "translation": {"image_weight": 0.0, "context_weight": 0.0}}


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra_modules=(imagevec_multi,))[1]


def prepared(registry, work_dir: Path, name: str = "imagevec-multi", steps: int = 300, train: dict | None = None,
             **overrides):
    config = {**TINY, **overrides, "train": {**TINY["train"], **(train or {}), "max_steps": steps}}
    model = resolve_model(registry, name, overrides=config).model
    model.prepare(mmbench.RunContext(seed=0, device="cpu", work_dir=work_dir, data_dir=SHARED_DATA))
    return model


@pytest.fixture(scope="module")
def models(registry, tmp_path_factory):
    """Single-objective models after 300 steps and their one-step controls; the full model and the
    ablation without translations."""
    root = tmp_path_factory.mktemp("imagevec-multi")
    out = {}
    for objective, weights in ONLY.items():
        out[objective] = prepared(registry, root / objective, **weights)
        out[f"{objective}-control"] = prepared(registry, root / f"{objective}-control", steps=1, **weights)
    out["full"] = prepared(registry, root / "full")
    out["noparallel"] = prepared(registry, root / "noparallel", name="imagevec-multi-noparallel")
    return out


def emoji_rsum(model, language: str = "en") -> float:
    features, names, _ = emoji_pairs(language, "val", "noto")
    return retrieval_scores(model.embed_images(features, source=mmbench.data.EMOJI_FEATURE_SOURCE),
                            model.embed_texts(names, language), captions_per_image=1)["rsum"]


def translation_r1(model) -> float:
    """en -> de R@1 over the 1,014 Multi30k *val* caption pairs (never trained on); chance 0.1 %."""
    rows = load_multi30k(SHARED_DATA, task=1, split="val", languages=["en", "de"], features=False)
    english, german = model.embed_texts(rows["caption_en"][:], "en"), model.embed_texts(rows["caption_de"][:], "de")
    return retrieval_scores(german, english, captions_per_image=1)["t2i_r1"]


def cooccurrence_auc(model) -> float:
    """Skip-gram's own signal on held-out text: how often a word pair seen side by side in a *val* English
    caption scores higher (word vector . context vector) than a random pair of the same words; 0.5 for an
    untrained model."""
    rows = load_multi30k(SHARED_DATA, task=1, split="val", languages=["en"], features=False)
    vocabulary = model.vocab
    pairs = np.array([(vocabulary.index[f"en:{a}"], vocabulary.index[f"en:{b}"]) for caption in rows["caption_en"][:]
                      for tokens in [[t for t in tokenize(caption) if f"en:{t}" in vocabulary.index]]
                      for a, b in zip(tokens, tokens[1:]) if a != b])
    words, contexts = model.net.words.weight.detach(), model.net.context.weight.detach()
    left, right = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    shuffled = right[torch.from_numpy(np.random.default_rng(0).permutation(len(right)))]
    positive = (words[left] * contexts[right]).sum(1)
    negative = (words[left] * contexts[shuffled]).sum(1)
    return float((positive[:, None] > negative[None, :2000]).float().mean())


def test_the_image_text_objective_learns_retrieval(models) -> None:
    learnt, control = emoji_rsum(models["image"]), emoji_rsum(models["image-control"])
    chance = 6 * 100 * 10 / 2 / len(emoji_pairs("en", "val", "noto")[1])  # rsum of random ranks, roughly
    assert learnt > 4 * max(control, chance) and learnt > 100


def test_the_context_objective_learns_cooccurrence(models) -> None:
    # ~10,000 held-out pairs: the AUC's standard error is about 0.005.
    assert cooccurrence_auc(models["context"]) > 0.6  # 0.64 here
    assert cooccurrence_auc(models["context-control"]) < 0.56  # 0.52 here


def test_the_translation_objective_learns_translations(models) -> None:
    learnt, control = translation_r1(models["translation"]), translation_r1(models["translation-control"])
    assert learnt > 30 and control < 2


def test_dropping_the_translations_drops_what_they_bring(models) -> None:
    with_translations, without = translation_r1(models["full"]), translation_r1(models["noparallel"])
    assert with_translations > without + 10  # images alone tie few en/de caption words together
    assert emoji_rsum(models["noparallel"]) > 100  # the rest still learns


def test_ablations_declare_and_cover_only_what_they_train(registry, models) -> None:
    def seen(name: str, **overrides) -> frozenset[str]:
        return resolve_model(registry, name, overrides=overrides).model.seen_data()

    assert seen("imagevec-multi") == {"emoji:train", "multi30k:train", "multi30k-mini-v1:train",
                                      "multi30k:test_2016_flickr", "rcv:train"}
    assert seen("imagevec-multi-noimage") == {"emoji:train", "multi30k:train", "rcv:train"}  # emoji: CLDR names
    assert seen("imagevec-multi-nocontext") == {"emoji:train", "multi30k:train", "multi30k-mini-v1:train",
                                                "multi30k:test_2016_flickr"}
    assert seen("imagevec-multi", context_sources=["en=/corpus.txt"], image_weight=0.0,
                translation_weight=0.0) == frozenset()  # a user's corpus is the user's to declare
    assert mmbench.Capability.IMAGES not in resolve_model(registry, "imagevec-multi-noimage").model.capabilities
    # Words only the dropped objective trains are not in the vocabulary: never an untrained vector as "found".
    image_words = set(models["image"].vocabulary("en"))
    text_words = set(models["context"].vocabulary("en")) | set(models["translation"].vocabulary("en"))
    assert image_words - text_words
    assert not (image_words - text_words) & set(models["full"].vocabulary("en")) - image_words
    assert image_words - text_words <= set(models["full"].vocabulary("en"))
    assert set(models["context"].vocabulary("en")).isdisjoint(image_words - text_words)


def test_a_resumed_run_is_bit_identical(registry, tmp_path) -> None:
    whole = prepared(registry, tmp_path / "whole", steps=40)
    prepared(registry, tmp_path / "split", steps=20, train={"checkpoint_every": 10})
    resumed = prepared(registry, tmp_path / "split", steps=40)
    for name, value in whole.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name


def test_bad_configs_are_refused(registry) -> None:
    for overrides, message in (({"image_weight": -1.0}, "weights"), ({"image_repeats": [1, 2]}, "image_repeats"),
                               ({"context_sources": ["wiki"]}, "LANG=PATH"),
                               ({"translation_sources": ["rcv"]}, "translation source")):
        with pytest.raises(ConfigError, match=message):
            resolve_model(registry, "imagevec-multi", overrides=overrides)
