"""ImageVec (Singhal et al. 2019): it learns crosslingual word vectors from emoji images, its variants,
checkpoints and resume, and a run through the harness. Trains tiny configs on the real emoji data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mmbench
from mmbench.data.emoji import load_emoji
from mmbench.data.io import column_array
from mmbench.errors import ConfigError, DataError, MMBenchError
from mmbench.kinds.retrieval import EMOJI_FEATURE_SOURCE, emoji_pairs
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.plugins import load_plugins
from mmbench.runner import RunOptions, resolve_model, run, select_cards
from mmbench.train import read_metrics
from mmbench.train.checkpoint import read_pointer
from mmbench.train.errors import CheckpointError
from mmbench.train.losses import in_batch_softmax
from mmbench_plugins import imagevec
from mmbench_plugins.cnn_mean import tokenize
from mmbench.train.corpora import build_pairs

LANGUAGES = "en,de,es,fr"
TINY = ["train.progress=false", f"languages={LANGUAGES}"]
N_TEST_CONCEPTS = 365
CHANCE_RSUM = 2 * (1 + 5 + 10) / N_TEST_CONCEPTS * 100


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra_modules=(imagevec,))[1]


def build(registry, name: str, *options: str) -> imagevec.ImageVec:
    return resolve_model(registry, name, list(options)).model


def prepared(registry, work_dir: Path, name: str = "imagevec", *options: str, seed: int = 0, **ctx):
    model = build(registry, name, *options)
    model.prepare(mmbench.RunContext(seed=seed, device="cpu", work_dir=work_dir, **ctx))
    return model


@pytest.fixture(scope="module")
def trained(registry, tmp_path_factory):
    """4 languages, 5 epochs (~200 steps of 1000 pairs): a few seconds on 2 cores."""
    work_dir = tmp_path_factory.mktemp("imagevec") / "work"
    return prepared(registry, work_dir, "imagevec", *TINY, "train.epochs=5"), work_dir


def concept_names(language: str) -> dict[str, str]:
    """CLDR names of the held-out test concepts in ``language``."""
    emoji = load_emoji()
    test = set(column_array(emoji.images, "concept")[column_array(emoji.images, "split") == "test"])
    rows = column_array(emoji.texts, "language") == language
    return {c: n for c, n in zip(column_array(emoji.texts, "concept")[rows], column_array(emoji.texts, "name")[rows])
            if c in test}


def translation_ranks(model, source: str, target: str) -> np.ndarray:
    """Rank (0 = first, ties pessimistic) of each test concept's target-language name among all of them
    when searched with its source-language name."""
    a, b = concept_names(source), concept_names(target)
    concepts = sorted(set(a) & set(b))
    x = model.embed_texts([a[c] for c in concepts], source)
    y = model.embed_texts([b[c] for c in concepts], target)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    similarity = x @ y.T
    return (similarity >= similarity.diagonal()[:, None]).sum(axis=1) - 1


def retrieval(model, language: str) -> dict[str, float]:
    features, names, _ = emoji_pairs(language, "test", "noto")
    return retrieval_scores(model.embed_images(features, source=EMOJI_FEATURE_SOURCE),
                            model.embed_texts(names, language), captions_per_image=1, ties="pessimistic")


def untrained_copy(model: imagevec.ImageVec) -> imagevec.ImageVec:
    """The same vocabulary and shapes with freshly initialised weights: what training must beat."""
    torch.manual_seed(0)
    copy = type(model)(model.config)
    copy.device, copy.vocab, copy.state = model.device, model.vocab, model.state
    copy.net = copy.build_net(model.state).eval()
    return copy


# -- learning ---------------------------------------------------------------------------------------

def test_learns_crosslingual_translations_of_unseen_concept_names(trained):
    model, _ = trained
    ranks = translation_ranks(model, "en", "de")
    chance = 1 / len(ranks)
    assert len(ranks) >= 300
    assert (ranks < 1).mean() > 25 * chance  # measured 0.19 (chance 0.003)
    assert (ranks < 10).mean() > 0.25  # measured 0.39 (chance 0.03)
    baseline = translation_ranks(untrained_copy(model), "en", "de")
    assert (ranks < 10).mean() > (baseline < 10).mean() + 0.15


def test_retrieves_emoji_images_of_unseen_concepts(trained):
    model, _ = trained
    for language in ("en", "de"):
        scores = retrieval(model, language)
        assert scores["t2i_r10"] > 20 and scores["i2t_r10"] > 20  # chance 2.7; measured en 34-36, de 27-30
        assert scores["rsum"] > 8 * CHANCE_RSUM
    assert retrieval(untrained_copy(model), "en")["rsum"] < retrieval(model, "en")["rsum"] / 3


def test_word_vectors_vocabulary_and_oov(trained):
    model, _ = trained
    assert model.languages() == ["de", "en", "es", "fr"]
    english = model.vocabulary("en")
    assert "face" in english and len(english) > 300
    vectors, found = model.embed_words(["Face", "cat", "zzzunseenword"], "en")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 100)
    assert found.tolist() == [True, True, False]
    assert np.all(vectors[2] == 0) and np.linalg.norm(vectors[0]) > 0
    # Tagged: the same spelling in two languages is two words.
    shared = sorted(set(english) & set(model.vocabulary("de")))
    assert shared
    en_vec, _ = model.embed_words(shared[:5], "en")
    de_vec, _ = model.embed_words(shared[:5], "de")
    assert not np.allclose(en_vec, de_vec)
    with pytest.raises(mmbench.Incompatible, match="not trained on language 'ja'"):
        model.embed_texts(["猫"], "ja")
    assert model.embed_texts([], "en").shape == (0, 100)


def test_embed_images_checks_the_feature_space(trained):
    model, _ = trained
    with pytest.raises(mmbench.Incompatible, match="efficientnet"):
        model.embed_images(np.zeros((2, 2048), np.float32), source="multi30k/resnet50")
    with pytest.raises(DataError, match=r"\(n, 1280\)"):
        model.embed_images(np.zeros((2, 7), np.float32), source=EMOJI_FEATURE_SOURCE)


# -- variants ---------------------------------------------------------------------------------------

def test_variants_resolve_with_their_defaults(registry):
    expected = {
        "imagevec": {"dim": 100, "hidden": 200, "image_encoder": "features", "language_tags": True},
        "imagevec-300d": {"dim": 300, "hidden": 300, "image_encoder": "features"},
        "imagevec-cooc": {"image_encoder": "cooc", "min_image_languages": 1},
        "imagevec-cooc-multi": {"image_encoder": "cooc", "min_image_languages": 2},
        "imagevec-unaware": {"language_tags": False, "image_encoder": "features"},
    }
    for name, fields in expected.items():
        resolved = resolve_model(registry, name, ["train.lr=0.01"])
        assert {k: resolved.config[k] for k in fields} == fields
        assert resolved.config["train"]["lr"] == 0.01 and resolved.config["train"]["batch_size"] == 1000
        has_images = mmbench.Capability.IMAGES in resolved.model.capabilities
        assert has_images == (fields["image_encoder"] == "features")
        assert mmbench.Capability.TRAINABLE in resolved.model.capabilities
    assert len({resolve_model(registry, name).config_hash for name in expected}) == len(expected)
    # Choosing co-occurrence with --set also drops the image capability.
    overridden = resolve_model(registry, "imagevec", ["image_encoder=cooc"]).model
    assert mmbench.Capability.IMAGES not in overridden.capabilities
    with pytest.raises(ConfigError, match="temperature"):
        resolve_model(registry, "imagevec", ["temperature=0"])


def test_cooc_learns_from_cooccurrence_and_embeds_no_images(registry, tmp_path):
    model = prepared(registry, tmp_path, "imagevec-cooc", "train.progress=false", "languages=en,de",
                     "train.epochs=6")
    assert model.net.images.weight.shape == (model.state["n_images"], 100)
    with pytest.raises(mmbench.Incompatible, match="co-occurrence"):
        model.embed_images(np.zeros((1, 1280), np.float32), source=EMOJI_FEATURE_SOURCE)
    ranks = translation_ranks(model, "en", "de")
    assert (ranks < 10).mean() > 0.15  # chance 0.03


def test_cooc_multi_keeps_only_images_with_queries_in_two_languages(registry, tmp_path):
    both = build_pairs("emoji", ("en", "de"), min_image_languages=2, tokenize=tokenize)
    single = build_pairs("emoji", ("en", "de"), min_image_languages=1, tokenize=tokenize)
    assert 0 < len(both.image_ids) <= len(single.image_ids)
    languages_per_image = {}
    for query, image in zip(both.pair_query, both.pair_image):
        languages_per_image.setdefault(image, set()).add(both.query_languages[query])
    assert all(len(langs) == 2 for langs in languages_per_image.values())
    with pytest.raises(DataError, match=">= 2 of the languages en"):
        prepared(registry, tmp_path, "imagevec-cooc-multi", "train.progress=false", "languages=en")


def test_unaware_shares_one_vector_per_spelling(registry, tmp_path):
    model = prepared(registry, tmp_path, "imagevec-unaware", "train.progress=false", "languages=en,de",
                     "train.max_steps=3")
    shared = sorted(set(model.vocabulary("en")) & set(model.vocabulary("de")))
    assert len(shared) > 20  # taxi, bus, ok, ...
    en_vec, en_found = model.embed_words(shared, "en")
    de_vec, de_found = model.embed_words(shared, "de")
    assert en_found.all() and de_found.all() and np.array_equal(en_vec, de_vec)
    assert not any(":" in key for key in model.vocab.keys)


def test_unknown_training_language_is_a_config_error(registry, tmp_path):
    with pytest.raises(ConfigError, match="xx"):
        prepared(registry, tmp_path, "imagevec", "train.progress=false", "languages=en,xx")


# -- checkpoints and resume -------------------------------------------------------------------------

def test_second_prepare_loads_instead_of_training(registry, trained):
    model, work_dir = trained
    run_dir = work_dir / "train"
    metrics = (run_dir / "metrics.jsonl").read_text()
    pointer = read_pointer(run_dir / "checkpoints", "latest")
    again = prepared(registry, work_dir, "imagevec", *TINY, "train.epochs=5")
    assert read_pointer(run_dir / "checkpoints", "latest") == pointer
    assert (run_dir / "metrics.jsonl").read_text() == metrics
    assert read_metrics(run_dir / "metrics.jsonl")[-1]["step"] == pointer["step"]
    for a, b in zip(model.net.state_dict().values(), again.net.state_dict().values()):
        assert torch.equal(a, b)
    # `mmbench eval`: load only, from the work dir or an explicit checkpoint directory.
    loaded = prepared(registry, work_dir, "imagevec", *TINY, "train.epochs=5", train=False)
    explicit = prepared(registry, Path("/nonexistent"), "imagevec", *TINY, train=False,
                        checkpoint=run_dir / "checkpoints" / pointer["name"])
    words = ["face", "cat", "heart"]
    for other in (loaded, explicit):
        np.testing.assert_array_equal(other.embed_words(words, "en")[0], model.embed_words(words, "en")[0])
        np.testing.assert_array_equal(other.embed_texts(["red heart"], "en"), model.embed_texts(["red heart"], "en"))


def test_eval_without_checkpoint_is_a_clear_error(registry, tmp_path):
    with pytest.raises(MMBenchError, match="no trained checkpoint in .*train it first"):
        prepared(registry, tmp_path, "imagevec", *TINY, train=False)


def test_checkpoint_of_another_shape_is_refused(registry, trained):
    _, work_dir = trained
    with pytest.raises(CheckpointError, match="'dim': 300"):
        prepared(registry, work_dir, "imagevec-300d", *TINY, train=False)


def test_interrupted_training_resumes_to_the_same_weights(registry, tmp_path):
    options = ("train.progress=false", "languages=en,fr", "train.batch_size=500")
    straight = prepared(registry, tmp_path / "straight", "imagevec", *options, "train.max_steps=6")
    # A run stopped after 3 steps, continued in the same directory (seed and data order are restored).
    prepared(registry, tmp_path / "resumed", "imagevec", *options, "train.max_steps=3")
    resumed = prepared(registry, tmp_path / "resumed", "imagevec", *options, "train.max_steps=6")
    for a, b in zip(straight.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)
    other_seed = prepared(registry, tmp_path / "seed1", "imagevec", *options, "train.max_steps=6", seed=1)
    assert not torch.equal(other_seed.net.words.weight, straight.net.words.weight)
    state = json.loads((tmp_path / "seed1" / "train" / "checkpoints" / "latest.json").read_text())
    saved = json.loads((tmp_path / "seed1" / "train" / "checkpoints" / state["name"] / "state.json").read_text())
    assert saved["config"]["seed"] == 1  # the TrainConfig follows ctx.seed


# -- pieces -----------------------------------------------------------------------------------------

def test_vocabulary_threshold_tags_and_stable_buckets():
    pairs = build_pairs("emoji", ("en",), min_image_languages=1, tokenize=tokenize)
    vocab = imagevec.Vocabulary.build(pairs, min_count=2, tagged=True, buckets=50)
    counts: dict[str, int] = {}
    for tokens in pairs.query_tokens:
        for token in set(tokens):
            counts[token] = counts.get(token, 0) + 1
    assert set(vocab.words["en"]) == {t for t, c in counts.items() if c >= 2}
    assert all(key.startswith("en:") for key in vocab.keys)
    rare = next(t for t, c in counts.items() if c == 1)
    assert rare not in vocab.words["en"] and vocab.row("en", rare, bucket=False) is None
    row = vocab.row("en", rare, bucket=True)
    assert len(vocab.keys) <= row < len(vocab) == len(vocab.keys) + 50
    assert row == imagevec.Vocabulary.from_json(json.loads(json.dumps(vocab.to_json()))).row("en", rare, bucket=True)


def test_collate_builds_the_bags_of_each_pair():
    query_rows = [[3], [1, 2, 2], [], [0, 4]]
    images = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    collate = imagevec.PairCollate(query_rows, images, weighted=True)
    batch = collate((torch.tensor([3, 1, 0]), torch.tensor([2, 0, 2]), torch.tensor([1.0, 2.0, 0.5])))
    assert batch["tokens"].tolist() == [0, 4, 1, 2, 2, 3]
    assert batch["offsets"].tolist() == [0, 2, 5]
    assert torch.equal(batch["images"], images[[2, 0, 2]]) and batch["weight"].tolist() == [1.0, 2.0, 0.5]
    flat, offsets = imagevec.bags(query_rows)
    assert flat.tolist() == [3, 1, 2, 2, 0, 4] and offsets.tolist() == [0, 1, 4, 4]


def test_reused_gradient_buffer_gives_the_dense_gradient_every_step():
    nets = []
    for reuse in (False, True):
        torch.manual_seed(0)
        nets.append(imagevec.ImageVecNet(50, 8, 16, feature_dim=12, reuse_word_grad=reuse))
    assert nets[1].words.sparse and not nets[0].words.sparse
    generator = torch.Generator().manual_seed(1)
    for step in range(3):  # a stale buffer would add the previous steps' rows
        tokens = torch.randint(0, 50, (30,), generator=generator)
        batch = {"tokens": tokens, "offsets": torch.arange(0, 30, 3), "images": torch.randn(10, 12, generator=generator)}
        grads = []
        for net in nets:
            net.zero_grad(set_to_none=True)
            imagevec.ranking_loss(net, batch, temperature=0.1, symmetric=False).backward()
            grads.append(net.words.weight.grad)
        assert not grads[1].is_sparse
        torch.testing.assert_close(grads[1], grads[0])
        assert grads[1].abs().sum() > 0


class FullyZeroedGrad(imagevec.ReusedDenseGrad):
    """The earlier hook: zeroes the whole buffer every step."""

    def __call__(self, weight: torch.Tensor) -> None:
        grad = weight.grad
        if grad is None or not grad.is_sparse:
            return
        grad = grad.coalesce()
        self.buffer.zero_().index_add_(0, grad.indices()[0], grad.values())
        weight.grad = self.buffer


@pytest.mark.parametrize("clip", [None, 0.5])
def test_zeroing_only_touched_rows_keeps_weights_bit_identical(clip):
    """After many Adam steps (fused, as the trainer uses it; with and without clipping), zeroing only the
    rows the previous step touched gives bit for bit the weights of zeroing the whole buffer."""
    nets, optimizers = [], []
    for hook in (FullyZeroedGrad, imagevec.ReusedDenseGrad):
        torch.manual_seed(0)
        net = imagevec.ImageVecNet(400, 8, 16, feature_dim=12)
        net.words.sparse = True
        net.words.weight.register_post_accumulate_grad_hook(hook(net.words.weight))
        nets.append(net)
        optimizers.append(torch.optim.Adam(net.parameters(), lr=0.01, fused=True))
    generator = torch.Generator().manual_seed(1)
    for step in range(40):
        tokens = torch.randint(0, 60 if step % 2 else 400, (60,), generator=generator)  # overlapping row sets
        batch = {"tokens": tokens, "offsets": torch.arange(0, 60, 3), "images": torch.randn(20, 12, generator=generator)}
        for net, optimizer in zip(nets, optimizers):
            # One step keeps the gradient instead of setting it to None: the hook must zero everything next.
            net.zero_grad(set_to_none=step != 17)
            imagevec.ranking_loss(net, batch, temperature=0.1, symmetric=False).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()
    for (name, want), got in zip(nets[0].state_dict().items(), nets[1].state_dict().values()):
        assert torch.equal(got, want), name


def test_pair_weights_scale_each_pair_loss():
    generator = torch.Generator().manual_seed(0)
    queries, items = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    ones = imagevec.weighted_in_batch_softmax(queries, items, torch.ones(6), temperature=0.1, symmetric=False)
    assert torch.allclose(ones, in_batch_softmax(queries, items, temperature=0.1, symmetric=False))
    weight = torch.tensor([2.0, 0, 0, 0, 0, 0])
    first = imagevec.weighted_in_batch_softmax(queries, items, weight, temperature=0.1, symmetric=False)
    logits = torch.nn.functional.normalize(queries, dim=-1) @ torch.nn.functional.normalize(items, dim=-1).T / 0.1
    assert torch.allclose(first, 2 * -torch.log_softmax(logits[0], 0)[0] / 6)


# -- through the harness ----------------------------------------------------------------------------

def test_harness_run_scores_far_above_chance(registry, tmp_path):
    card = select_cards(registry, ["emoji-retrieval"], [])[0]
    card = dataclasses.replace(card, subsets=[s for s in card.subsets if s.name == "en"], aggregate=None)
    resolved = resolve_model(registry, "imagevec", ["train.epochs=4", "train.progress=false", "languages=en"])
    (outcome,) = run(registry, [resolved], [card], RunOptions(results_dir=tmp_path, data_dir=tmp_path))
    assert outcome.status == "done", outcome.message
    record = json.loads(outcome.path.read_text())
    assert record["model"] == "imagevec" and record["config"]["languages"] == ["en"]
    assert record["main_score"] > 8 * CHANCE_RSUM  # measured ~140
    run_dir = next((tmp_path / ".runs").glob("imagevec__*")) / "seed-0" / "train"
    assert (run_dir / imagevec.STATE_FILE).is_file() and read_pointer(run_dir / "checkpoints", "latest")


def test_registering_the_models_imports_neither_torch_nor_datasets():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mmbench_plugins import imagevec, cnn_mean\n"
        "names = []\n"
        "imagevec.register_models(lambda cls, **kw: names.append(kw.get('name', cls.name)))\n"
        "cnn_mean.register_models(lambda cls, **kw: names.append(cls.name))\n"
        "print(len(names), 'torch' in sys.modules, 'datasets' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(len(imagevec.VARIANTS) + 1), "False", "False"]
