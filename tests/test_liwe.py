"""LIWE / CLMR (Wehrmann and Barros) on the real multi30k-mini photos: it learns (test t2i R@10 far above
chance and above a shuffled-pairs control), resume is exact including the loss's step t, a trained model
reloads for `mmbench eval`, any script is embedded, and LIWE's size does not grow with languages while the
word-table control's does. Tiny configs (GRU 64-128, a few to 150 steps) keep each run to seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmbench_plugins import liwe
from multi30k_tree import official_multi30k_tree

import mmbench
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.plugins import load_plugins
from mmbench.runner import resolve_model
from mmbench.train import read_metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "multi30k" / "features").is_dir(),
                                reason="needs the Multi30k test-2016 features under ../shared/data")
TINY = ["hidden=64", "neurons=64", "dim=64", "clmr_batch=64", "cnn_channels=16", "train.progress=false"]
N_TEST = 200
CHANCE_R10 = 10 / N_TEST * 100
FEATURES = "multi30k/resnet50-avgpool"


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra_modules=(liwe,))[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def prepared(registry, work_dir: Path, name: str, *options: str, seed: int = 0, data_dir: Path = DATA,
             **ctx) -> liwe.LIWE:
    model = resolve_model(registry, name, list(options)).model
    model.prepare(mmbench.RunContext(seed=seed, device="cpu", work_dir=work_dir, data_dir=data_dir, **ctx))
    return model


def t2i_r10(model: liwe.LIWE, language: str = "en") -> float:
    from mmbench.data.multi30k_mini import load_multi30k_mini

    test = load_multi30k_mini(DATA)["test"]
    images = model.embed_images(np.asarray(test["features"], dtype=np.float32), source=FEATURES)
    captions = [c for group in test[f"captions_{language}"] for c in group]
    return retrieval_scores(images, model.embed_texts(captions, language), captions_per_image=5)["t2i_r10"]


def test_liwe_learns_image_caption_retrieval_above_a_shuffled_control(registry, tmp_path):
    # Words learnt from characters start slower than a word table: GRU 128, 150 steps (about 15 s on one
    # core per run; CLMR is covered by the resume test).
    steps = [*TINY, "hidden=128", "neurons=128", "dim=128", "train.max_steps=150", "train.val_every=1000",
             "clmr=false"]
    trained = prepared(registry, tmp_path / "real", "liwe", *steps)
    control = prepared(registry, tmp_path / "shuffled", "liwe", *steps, "shuffle_pairs=true")
    real, shuffled = t2i_r10(trained), t2i_r10(control)
    assert real > 3 * CHANCE_R10, (real, shuffled)
    assert real > shuffled + 10, (real, shuffled)
    assert int(trained.net.counter.step) == 150  # k(t) read the trainer's step
    assert read_metrics(tmp_path / "real" / "train" / "metrics.jsonl")[-1]["val/rsum"] > 0


def test_resume_is_exact_including_the_loss_step_and_a_trained_model_reloads(registry, tmp_path):
    options = [*TINY, "train.checkpoint_every=3", "train.val_every=3"]
    whole = prepared(registry, tmp_path / "whole", "liwe", *options, "train.max_steps=6")
    prepared(registry, tmp_path / "parts", "liwe", *options, "train.max_steps=3")
    resumed = prepared(registry, tmp_path / "parts", "liwe", *options, "train.max_steps=6")
    for (name, a), (_, b) in zip(whole.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(a, b), name  # weights, batch-norm statistics, and the step t of k(t)
    loaded = prepared(registry, tmp_path / "whole", "liwe", *options, "train.max_steps=6", train=False)
    texts = ["a dog runs on the grass", "ein hund läuft", "собака бежит по траве", "犬が走る", "🐕 🐕", ""]
    vectors = loaded.embed_texts(texts, "xx")  # any language: characters need no vocabulary
    assert np.array_equal(vectors, whole.embed_texts(texts, "xx")) and np.isfinite(vectors).all()
    words, found = loaded.embed_words(["dog", "hund", "собака"], "ru")
    assert found.all() and words.shape == (3, 64) and np.isfinite(words).all()
    assert "dog" in loaded.vocabulary("en") and "hund" in loaded.vocabulary("de")


@pytest.mark.parametrize("name", ["charcnn", "liwe-wordtable", "liwe-noclmr", "liwe-en"])
def test_variants_train_and_embed(registry, tmp_path, name):
    model = prepared(registry, tmp_path, name, *TINY, "train.max_steps=3", "train.val_every=3")
    texts = ["a dog runs", "собака"]
    assert model.embed_texts(texts, "en").shape == (2, 64)
    images = model.embed_images(np.zeros((2, 2048), dtype=np.float32), source=FEATURES)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    if name == "charcnn":
        with pytest.raises(mmbench.Incompatible):
            model.embed_words(["dog"], "en")
    elif name == "liwe-wordtable":
        assert model.embed_words(["dog", "hund", "qqqqzz"], "en")[1].tolist() == [True, True, False]


def test_liwe_size_stays_flat_as_languages_are_added_while_a_word_table_grows(registry, tmp_path):
    def parameters(name: str, *options: str) -> int:
        from mmbench.train.chars import count_parameters

        model = resolve_model(registry, name, [*TINY, *options]).model
        state, _ = model.training_data(mmbench.RunContext(seed=0, device="cpu", work_dir=tmp_path, data_dir=DATA))
        return count_parameters(model.build_net(state).text)

    two = ["languages=en,de", "clmr_pairs=en-de"]
    four = ["languages=en,de,fr,cs", "clmr_pairs=en-de,en-fr,en-cs"]
    assert parameters("liwe", *two) == parameters("liwe", *four)
    assert parameters("charcnn", *two) == parameters("charcnn", *four)
    assert parameters("liwe-wordtable", *four) > parameters("liwe-wordtable", *two) + 64 * 500


def test_variants_declare_what_they_train_on(registry):
    def model(name: str, *options: str) -> liwe.LIWE:
        return resolve_model(registry, name, list(options)).model

    assert model("liwe").seen_data() == {"multi30k-mini-v1:train", "multi30k:test_2016_flickr"}
    for name in ("liwe-cooc", "liwe-noclmr-cooc", "liwe-wordtable-cooc"):
        assert model(name).seen_data() == {"multi30k:train"}
        assert model(name).config.train.epochs == 1  # one pass over 290,000 captions: sized for 2 CPU cores
    assert not model("liwe-noclmr-cooc").config.clmr and model("liwe-wordtable-cooc").config.text_encoder == "wordtable"
    paper = model("liwe-paper").config.train
    assert (paper.optimizer, paper.schedule, paper.warmup_steps, paper.decay_rate) == ("adamax", "warmup-multistep",
                                                                                      4000, 0.25)
    assert paper.decay_steps == (10000, 12000, 14000, 16000, 18000) and model("liwe-paper").config.hidden == 1024
    with pytest.raises(mmbench.errors.MMBenchError):
        resolve_model(registry, "liwe", ["clmr_pairs=en-xx"]).model.training_data(
            mmbench.RunContext(data_dir=DATA))


def test_trains_on_the_official_multi30k_layout_with_clmr_on_its_train_translations(registry, tmp_path):
    root = official_multi30k_tree(tmp_path / "data", DATA / "multi30k", translations=("en", "de", "fr", "cs"))
    model = prepared(registry, tmp_path / "work", "liwe", *TINY, "train_data=multi30k", "train.max_steps=3",
                     data_dir=root)
    assert model.state["n_parallel"] == 3 * 40 and model.state["n_images"] == 40
    assert model.embed_images(np.zeros((2, 32), dtype=np.float32), source=FEATURES).shape == (2, 64)
    cooc = prepared(registry, tmp_path / "cooc", "liwe-cooc", *TINY, "train.max_steps=3", data_dir=root)
    with pytest.raises(mmbench.Incompatible):
        cooc.embed_images(np.zeros((2, 32), dtype=np.float32), source=FEATURES)
    assert cooc.embed_texts(["a dog"], "en").shape == (1, 64)
