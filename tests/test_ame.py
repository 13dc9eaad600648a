"""AME (Mohammadshahi et al. 2019) on the real multi30k-mini photos: it learns (test t2i R@10 far above
chance and above a shuffled-pairs control), resume is exact, a trained model reloads for `mmbench eval`,
and it declares what it trained on. Tiny configs (GRU 64, a few dozen steps) keep each run to seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from multi30k_tree import official_multi30k_tree

import mmbench
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.plugins import load_plugins
from mmbench.runner import resolve_model
from mmbench.train import read_metrics
from mmbench_plugins import ame

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not (DATA / "multi30k" / "features").is_dir(),
                                reason="needs the Multi30k test-2016 features under ../shared/data")
TINY = ["init=random", "hidden=64", "train.progress=false", "train.batch_size=128", "track_every=0"]
N_TEST = 200
CHANCE_R10 = 10 / N_TEST * 100


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra_modules=(ame,))[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


def prepared(registry, work_dir: Path, name: str, *options: str, seed: int = 0, **ctx) -> ame.AME:
    model = resolve_model(registry, name, list(options)).model
    model.prepare(mmbench.RunContext(seed=seed, device="cpu", work_dir=work_dir, data_dir=DATA, **ctx))
    return model


def retrieval_on_test_split(model: ame.AME, language: str = "en") -> dict[str, float]:
    from mmbench.data.multi30k_mini import load_multi30k_mini

    test = load_multi30k_mini(DATA)["test"]
    images = model.embed_images(np.asarray(test["features"], dtype=np.float32), source="multi30k/resnet50-avgpool")
    captions = [c for group in test[f"captions_{language}"] for c in group]
    return retrieval_scores(images, model.embed_texts(captions, language), captions_per_image=5)


def test_ame_learns_image_caption_retrieval_above_a_shuffled_control(registry, tmp_path):
    steps = ["train.max_steps=80", "train.val_every=1000"]
    trained = prepared(registry, tmp_path / "real", "ame", *TINY, *steps)
    control = prepared(registry, tmp_path / "shuffled", "ame", *TINY, *steps, "shuffle_pairs=true")
    real, shuffled = retrieval_on_test_split(trained)["t2i_r10"], retrieval_on_test_split(control)["t2i_r10"]
    assert real > 3 * CHANCE_R10, (real, shuffled)
    assert real > shuffled + 10, (real, shuffled)
    metrics = read_metrics(tmp_path / "real" / "train" / "metrics.jsonl")
    assert any("loss/align" in r for r in metrics) and any("loss/ranking" in r for r in metrics)


def test_resume_is_exact_and_a_trained_model_reloads(registry, tmp_path):
    options = [*TINY, "train.checkpoint_every=3"]
    whole = prepared(registry, tmp_path / "whole", "ame", *options, "train.max_steps=6")
    prepared(registry, tmp_path / "parts", "ame", *options, "train.max_steps=3")
    resumed = prepared(registry, tmp_path / "parts", "ame", *options, "train.max_steps=6")
    for (name, a), (_, b) in zip(whole.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(a, b), name  # weights, mappings and the alignment lr factor
    loaded = prepared(registry, tmp_path / "whole", "ame", *options, "train.max_steps=6", train=False)
    texts = ["a dog runs on the grass", "zzz unknownword"]
    assert np.array_equal(loaded.embed_texts(texts, "en"), whole.embed_texts(texts, "en"))
    vectors, found = loaded.embed_words(["dog", "hund", "zzzz"], "en")
    assert found.tolist() == [True, False, False] and vectors.shape == (3, 300)


def test_variants_declare_what_they_train_on(registry):
    def seen(name: str, *options: str) -> frozenset[str]:
        return resolve_model(registry, name, list(options)).model.seen_data()

    base = seen("ame", "init=random")
    assert {"multi30k-mini-v1:train", "multi30k:test_2016_flickr", "muse:en-de.full"} <= base
    assert not any(i.endswith("5000-6500") for i in base)  # the clean lexicon never reads muse-bli's test words
    assert "muse:en-de.5000-6500" in seen("ame", "init=random", "lexicon=authors")
    assert not any(i.startswith("muse:") for i in seen("ame-fme", "init=random"))
    assert not any(i.startswith("muse:") for i in seen("ame-noalign", "init=random"))
    assert "muse:en-de.0-5000" in seen("ame")  # the skip-gram initialisation is aligned on MUSE train
    assert mmbench.Capability.IMAGES not in resolve_model(registry, "ame-cooc", []).model.capabilities


def official_tree(root: Path, *, features: bool) -> Path:
    """The official Multi30k layout (task-2 captions, image lists, generated features if ``features``) and the
    MUSE lexicon AME aligns on."""
    official_multi30k_tree(root, DATA / "multi30k", features=features)
    (root / "muse").symlink_to(DATA / "muse")
    return root


def test_trains_on_the_official_multi30k_layout_and_names_missing_features(registry, tmp_path):
    root = official_tree(tmp_path / "data", features=True)
    model = resolve_model(registry, "ame", [*TINY, "train_data=multi30k", "min_count=1", "train.max_steps=4"]).model
    model.prepare(mmbench.RunContext(seed=0, device="cpu", work_dir=tmp_path / "work", data_dir=root))
    assert model.embed_images(np.zeros((2, 32), dtype=np.float32), source="multi30k/resnet50-avgpool").shape == (2, 64)
    assert model.seen_data() >= {"multi30k:train"}
    bare = official_tree(tmp_path / "bare", features=False)
    with pytest.raises(mmbench.errors.MMBenchError) as error:
        model.prepare(mmbench.RunContext(seed=0, device="cpu", work_dir=tmp_path / "work2", data_dir=bare))
    message = str(error.value)
    assert "\n" not in message and "train-resnet50-avgpool.npy" in message and "github.com/multi30k" in message


def test_a_rerun_on_a_finished_run_keeps_the_best_validated_weights(registry, tmp_path):
    options = [*TINY, "train.max_steps=6", "train.val_every=2"]
    first = prepared(registry, tmp_path / "run", "ame", *options)
    again = prepared(registry, tmp_path / "run", "ame", *options)  # nothing left to train
    for (name, a), (_, b) in zip(first.net.state_dict().items(), again.net.state_dict().items()):
        assert torch.equal(a, b), name


def coco_tree(root: Path) -> Path:
    """COCO's official layout (the Karpathy split JSON and an ``ids``/``features`` .npz, as the COCO cards
    read them), filled with real multi30k-mini photos: its train photos as Karpathy train + restval, its val
    photos as val, its test photos as test; five English captions each and their ResNet-50 features."""
    import json

    from mmbench.data.multi30k_mini import load_multi30k_mini

    mini = load_multi30k_mini(DATA)
    images, ids, features = [], [], []
    for split, karpathy in (("train", None), ("val", "val"), ("test", "test")):
        rows = mini[split]
        for i, (captions, feature) in enumerate(zip(rows["captions_en"], rows["features"])):
            part = karpathy or ("restval" if i % 5 == 0 else "train")
            cocoid = 100_000 + len(ids)
            images.append({"filename": f"COCO_{cocoid}.jpg", "cocoid": cocoid, "split": part,
                           "sentences": [{"raw": c} for c in captions]})
            ids.append(cocoid)
            features.append(np.asarray(feature, dtype=np.float32))
    (root / "coco" / "features").mkdir(parents=True)
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    order = np.random.default_rng(0).permutation(len(ids))  # the .npz is matched by id, in any order
    np.savez(root / "coco" / "features" / "resnet152-avgpool.npz", ids=np.asarray(ids)[order],
             features=np.stack(features)[order])
    return root


def test_ame_coco_trains_on_the_official_coco_layout_and_learns(registry, tmp_path):
    from mmbench.train.captions import caption_image_pairs

    root = coco_tree(tmp_path / "data")
    pairs = caption_image_pairs("coco", "train", ["en"], data_dir=root, tokenize=mmbench.text.tokenize)
    assert len(pairs.image_ids) == 700 and len(pairs) == 3500  # Karpathy train + restval, 5 captions each
    model = resolve_model(registry, "ame-coco", [*TINY, "train.max_steps=80", "train.val_every=1000"]).model
    assert model.seen_data() >= {"coco-karpathy:train", "coco-karpathy:restval"}
    assert not model.seen_data() & {"coco-karpathy:test", "multi30k-mini-v1:train"}
    model.prepare(mmbench.RunContext(seed=0, device="cpu", work_dir=tmp_path / "work", data_dir=root))
    from mmbench.data.multi30k_mini import load_multi30k_mini

    test = load_multi30k_mini(DATA)["test"]
    images = model.embed_images(np.asarray(test["features"], dtype=np.float32), source="coco/resnet152-avgpool")
    captions = [c for group in test["captions_en"] for c in group]
    scores = retrieval_scores(images, model.embed_texts(captions, "en"), captions_per_image=5)
    assert scores["t2i_r10"] > 3 * 5.0  # chance R@10 is 5 % on 200 images
    with pytest.raises(mmbench.Incompatible):
        model.embed_images(images, source="multi30k/resnet50-avgpool")
