"""``precomputed:DIR``: embeddings from files score exactly like the model that made them; bad files fail clearly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from mmbench_plugins import precomputed
from mmbench_plugins.precomputed import Precomputed, feature_key, write_images, write_texts

from mmbench import plugins
from mmbench.errors import DataError
from mmbench.kinds.retrieval_sources import MULTI30K_FEATURE_SOURCE, load_retrieval_data
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.models import Incompatible, RunContext
from mmbench.runner import RunOptions, resolve_model, run, select_cards


@pytest.fixture(scope="module")
def registry():
    _, registry = plugins.load_plugins()
    if "precomputed" not in registry.models:  # until the entry point is in an installed pyproject
        _, registry = plugins.load_plugins(extra_modules=(precomputed,))
    return registry


def _card(registry, task: str, subset: str):
    (card,) = select_cards(registry, [task], [])
    card.subsets = [s for s in card.subsets if s.name == subset]
    card.aggregate = None
    return card, card.subsets[0]


def _run_one(registry, spec: str, card, data_dir: Path, results_dir: Path):
    resolved = resolve_model(registry, spec)
    (outcome,) = run(registry, [resolved], [card], RunOptions(results_dir=results_dir, data_dir=data_dir))
    return resolved, outcome


def _scores(outcome) -> dict:
    assert outcome.status == "done", outcome.message
    return json.loads(outcome.path.read_text())["scores"]


def test_feature_key_is_sha1_of_little_endian_float32_bytes():
    row = np.array([0.5, -1.25, 3.0])
    assert feature_key(row) == hashlib.sha1(np.array([0.5, -1.25, 3.0], dtype="<f4").tobytes()).hexdigest()
    assert feature_key(row.astype(np.float16)) == feature_key(row)


def test_cnn_mean_round_trip_through_files_gives_identical_scores(registry, tmp_path):
    """Export cnn-mean's embeddings of the emoji task in shuffled row order; precomputed:DIR scores the same."""
    card, subset = _card(registry, "emoji-retrieval", "en")
    resolved, outcome = _run_one(registry, "cnn-mean", card, tmp_path, tmp_path / "a")
    direct = _scores(outcome)
    assert direct["rsum"] > 100  # a real model, far above chance (rsum 8.8 for 365 items)

    data = load_retrieval_data(card, subset, tmp_path)
    model = resolved.model
    order = np.random.default_rng(0).permutation(len(data.captions))
    captions = [data.captions[i] for i in order]
    write_texts(tmp_path / "emb", "en", captions, model.embed_texts(captions, "en"))
    features = data.features[order]
    image_vectors = model.embed_images(features, source=data.feature_source)
    write_images(tmp_path / "emb", data.feature_source, features, image_vectors)

    _, outcome = _run_one(registry, f"precomputed:{tmp_path / 'emb'}", card, tmp_path, tmp_path / "b")
    assert _scores(outcome) == direct


def test_five_captions_per_image_on_multi30k_mini(registry, shared_data, tmp_path):
    """Rows are matched by content: a shuffled export scores as the canonical-order arrays do."""
    card, subset = _card(registry, "multi30k-mini", "en")
    data = load_retrieval_data(card, subset, shared_data)
    assert data.captions_per_image == 5 and data.feature_source == MULTI30K_FEATURE_SOURCE
    rng = np.random.default_rng(1)
    projection = rng.standard_normal((data.features.shape[1], 32)).astype(np.float32)
    images = data.features @ projection
    text_vectors: dict[str, np.ndarray] = {}  # a text's embedding depends on the text only, as in a real model
    for index, caption in enumerate(data.captions):
        text_vectors.setdefault(caption, images[index // 5] + 3.0 * rng.standard_normal(32).astype(np.float32))
    captions = np.stack([text_vectors[c] for c in data.captions])
    expected = retrieval_scores(images, captions, captions_per_image=5)

    texts = list(text_vectors)[::-1]
    write_texts(tmp_path / "emb", "en", texts, np.stack([text_vectors[t] for t in texts]))
    order = rng.permutation(len(images))
    write_images(tmp_path / "emb", MULTI30K_FEATURE_SOURCE, data.features[order], images[order])
    assert (tmp_path / "emb" / "images" / "multi30k" / "resnet50-avgpool.npy").is_file()

    _, outcome = _run_one(registry, f"precomputed:{tmp_path / 'emb'}", card, shared_data, tmp_path / "r")
    scores = _scores(outcome)
    assert scores == pytest.approx(expected, rel=1e-6)
    assert scores["t2i_r10"] > 20  # the synthetic pairing is visible: chance is 5


@pytest.fixture()
def emoji_export(registry, tmp_path):
    """A complete export of the emoji-retrieval en inputs (random 4-d embeddings)."""
    card, subset = _card(registry, "emoji-retrieval", "en")
    data = load_retrieval_data(card, subset, tmp_path)
    rng = np.random.default_rng(2)
    directory = tmp_path / "emb"
    write_texts(directory, "en", data.captions, rng.standard_normal((len(data.captions), 4)))
    write_images(directory, data.feature_source, data.features, rng.standard_normal((data.n_images, 4)))
    return card, data, directory


def _prepared(directory: Path) -> Precomputed:
    model = Precomputed(argument=str(directory))
    model.prepare(RunContext())
    return model


def test_lookup_returns_rows_in_the_order_asked(emoji_export):
    _, data, directory = emoji_export
    model = _prepared(directory)
    stored = np.load(directory / "texts" / "en.npy")
    asked = [data.captions[3], data.captions[0], data.captions[3]]
    np.testing.assert_array_equal(model.embed_texts(asked, "en"), stored[[3, 0, 3]])
    images = np.load(directory / "images" / f"{data.feature_source}.npy")
    np.testing.assert_array_equal(model.embed_images(data.features[[5, 1]], source=data.feature_source), images[[5, 1]])
    assert model.languages() == ["en"]


def test_missing_language_or_feature_space_is_a_skip_with_reason(registry, emoji_export, tmp_path):
    card, data, directory = emoji_export
    (directory / "images" / f"{data.feature_source}.keys").unlink()
    (directory / "images" / f"{data.feature_source}.npy").unlink()
    _, outcome = _run_one(registry, f"precomputed:{directory}", card, tmp_path, tmp_path / "r")
    assert outcome.status == "skipped" and outcome.message.endswith("has no images/emoji/efficientnet-lite0.keys")
    model = _prepared(directory)
    with pytest.raises(Incompatible, match=r"has no texts/de\.txt"):
        model.embed_texts(["Hund"], "de")


def test_partial_export_is_a_one_line_error_naming_the_file(registry, emoji_export, tmp_path):
    card, data, directory = emoji_export
    vectors = np.load(directory / "texts" / "en.npy")
    write_texts(directory, "en", data.captions[1:], vectors[1:])
    _, outcome = _run_one(registry, f"precomputed:{directory}", card, tmp_path, tmp_path / "r")
    assert outcome.status == "error" and "\n" not in outcome.message
    assert f"en.txt: no embedding for 1 of the {len(data.captions)} en texts asked for" in outcome.message
    assert repr(data.captions[0]) in outcome.message


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: np.save(d / "texts" / "en.npy", np.load(d / "texts" / "en.npy")[:-1]),
         r"en\.npy: has 364 rows but en\.txt has 365 lines"),
        (lambda d: np.save(d / "texts" / "en.npy", np.full((365, 4), np.nan, np.float32)),
         r"en\.npy: contains NaN or infinite values"),
        (lambda d: np.save(d / "texts" / "en.npy", np.zeros((365, 5), np.float32)),
         r"efficientnet-lite0\.npy: has 4 columns but en\.npy has 5; all embeddings must share one space"),
        (lambda d: (d / "texts" / "en.npy").unlink(), r"en\.npy: not found\. it holds the embeddings"),
        (lambda d: (d / "texts" / "en.txt").write_bytes(b"caf\xe9\n"), r"en\.txt:1: not valid utf-8"),
    ],
)
def test_malformed_files_raise_data_error_naming_the_file(emoji_export, damage, message):
    _, _, directory = emoji_export
    damage(directory)
    with pytest.raises(DataError, match=message) as error:
        _prepared(directory)
    assert "\n" not in str(error.value)


def test_missing_or_empty_directory(registry, tmp_path):
    with pytest.raises(DataError, match=r"nowhere: precomputed embeddings directory not found"):
        resolve_model(registry, f"precomputed:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no texts/\*\.txt or images/\*\*/\*\.keys files"):
        _prepared(tmp_path / "empty")


def test_writers_refuse_what_the_layout_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="cannot store a text containing a line break"):
        write_texts(tmp_path, "en", ["two\nlines"], np.zeros((1, 2)))
    with pytest.raises(DataError, match=r"2 lines need a \(2, d\) array, got shape \(3, 2\)"):
        write_texts(tmp_path, "en", ["a", "b"], np.zeros((3, 2)))


def test_identity_changes_when_an_embedding_file_changes(emoji_export):
    _, _, directory = emoji_export
    before = Precomputed(argument=str(directory)).identity()
    np.save(directory / "texts" / "en.npy", np.load(directory / "texts" / "en.npy") * 2)
    assert Precomputed(argument=str(directory)).identity() != before
