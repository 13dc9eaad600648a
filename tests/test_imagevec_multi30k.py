"""ImageVec on Multi30k: the two training sources never see evaluation images, the co-occurrence variant
learns translations, the feature variant retrieves test photos better than a shuffled-pairs control, and
the alignment ratio is tracked during training. Short CPU runs on the real data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench.data.emoji import load_emoji
from mmbench.data.io import column_array, feature_array
from mmbench.data.multi30k_mini import load_multi30k_mini, multi30k_mini_split_ids
from mmbench.errors import ConfigError
from mmbench.kinds.retrieval import EMOJI_FEATURE_SOURCE
from mmbench.kinds.retrieval_sources import MULTI30K_FEATURE_SOURCE
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.plugins import load_plugins
from mmbench.runner import RunOptions, resolve_model, run, select_cards
from mmbench.train import read_metrics
from mmbench.train import corpora as imagevec_data
from mmbench_plugins import imagevec
from mmbench_plugins.cnn_mean import tokenize
from mmbench.train.corpora import build_pairs

# Frequent Multi30k concepts and their German words (each in >= 800 training captions of both languages).
EN_DE = {"man": "mann", "woman": "frau", "two": "zwei", "girl": "mädchen", "boy": "junge", "dog": "hund",
         "street": "straße", "group": "gruppe", "water": "wasser", "child": "kind", "three": "drei",
         "men": "männer", "women": "frauen", "children": "kinder", "shirt": "hemd"}
QUICK = ["train.progress=false"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra_modules=(imagevec,))[1]


def image_list(root: Path, split: str) -> list[str]:
    return (root / "multi30k" / "task1" / "image_splits" / f"{split}.txt").read_text().split()


def prepare(registry, name: str, options: list[str], work_dir: Path, data_dir: Path) -> imagevec.ImageVec:
    model = resolve_model(registry, name, [*QUICK, *options]).model
    model.prepare(mmbench.RunContext(seed=0, device="cpu", work_dir=work_dir, data_dir=data_dir))
    return model


# -- sources ----------------------------------------------------------------------------------------

def test_multi30k_source_is_the_training_split_in_four_languages(shared_data):
    pairs = build_pairs("multi30k", (), min_image_languages=1, tokenize=tokenize, data_dir=shared_data)
    train = image_list(shared_data, "train")
    assert pairs.image_ids == train and len(train) == 29000
    evaluation = {name for split in ("val", "test_2016_flickr", "test_2017_flickr", "test_2018_flickr")
                  for name in image_list(shared_data, split)}
    assert not set(pairs.image_ids) & evaluation
    assert pairs.image_features.shape == (29000, 0) and pairs.feature_source == ""
    assert pairs.languages == ["cs", "de", "en", "fr"]
    # Every image is paired with one caption per language (tokenised as the emoji queries are), except
    # two German captions that are just "@@" (no word): those images keep three languages.
    languages_of = {}
    for query, image in zip(pairs.pair_query, pairs.pair_image):
        languages_of.setdefault(int(image), []).append(pairs.query_languages[query])
    complete = [sorted(langs) == ["cs", "de", "en", "fr"] for langs in languages_of.values()]
    assert len(complete) == 29000 and sum(complete) == 28998
    assert [pairs.image_ids[i] for i, ok in enumerate(complete) if not ok] == [train[16509], train[16663]]

    first = [pairs.query_tokens[q] for q, i in zip(pairs.pair_query, pairs.pair_image) if i == 0]
    assert ("two", "young", "white", "males", "are", "outside", "near", "many", "bushes") in first


def test_multi30k_mini_source_is_its_train_split_with_features(shared_data):
    pairs = build_pairs("multi30k-mini", (), min_image_languages=1, tokenize=tokenize, data_dir=shared_data)
    splits = multi30k_mini_split_ids(shared_data)
    assert pairs.image_ids == splits["train"] and len(pairs.image_ids) == 700
    assert not set(pairs.image_ids) & (set(splits["test"]) | set(splits["val"]))
    train = load_multi30k_mini(shared_data)["train"]
    np.testing.assert_array_equal(pairs.image_features, feature_array(train))
    assert pairs.feature_source == MULTI30K_FEATURE_SOURCE
    per_image = {}
    for query, image in zip(pairs.pair_query, pairs.pair_image):
        per_image.setdefault(int(image), []).append(pairs.query_languages[query])
    # Five task-2 captions in en and de (fewer only where an image repeats one), one in fr and cs.
    assert all(sorted(set(langs)) == ["cs", "de", "en", "fr"] and langs.count("fr") == langs.count("cs") == 1
               and 4 <= langs.count("en") <= 5 and 4 <= langs.count("de") <= 5 for langs in per_image.values())
    assert sum(langs.count("en") for langs in per_image.values()) >= 0.99 * 5 * 700


@pytest.fixture
def tiny_multi30k(tmp_path) -> Path:
    """A data root with a two-image task-1 train split (captions in en, de) whose b.jpg is a test image."""
    root = tmp_path / "root"
    raw, splits = root / "multi30k" / "task1" / "raw", root / "multi30k" / "task1" / "image_splits"
    raw.mkdir(parents=True)
    splits.mkdir(parents=True)
    (splits / "train.txt").write_text("a.jpg\nb.jpg\n")
    (splits / "test_2016_flickr.txt").write_text("c.jpg\nb.jpg\n")
    for lang in ("en", "de"):
        (raw / f"train.{lang}.gz").write_text("x y\nz\n")  # plain text loads under any name
    return root


def test_multi30k_source_refuses_training_on_evaluation_images(tiny_multi30k, shared_data):
    with pytest.raises(mmbench.errors.DataError, match=r"train.txt: lists 1 images of test_2016_flickr.txt"):
        build_pairs("multi30k", ("en", "de"), min_image_languages=1, tokenize=tokenize, data_dir=tiny_multi30k)
    (tiny_multi30k / "multi30k" / "task1" / "image_splits" / "test_2016_flickr.txt").write_text("c.jpg\n")
    pairs = build_pairs("multi30k", ("en", "de"), min_image_languages=1, tokenize=tokenize, data_dir=tiny_multi30k)
    assert pairs.image_ids == ["a.jpg", "b.jpg"] and len(pairs) == 4
    assert [(lang, tokens) for lang, tokens in zip(pairs.query_languages, pairs.query_tokens)] == [
        ("en", ("x", "y")), ("de", ("x", "y")), ("en", ("z",)), ("de", ("z",))]
    (tiny_multi30k / "multi30k" / "task1" / "raw" / "train.de.gz").write_text("x y\n@@\n")  # b.jpg: no German
    bilingual = build_pairs("multi30k", ("en", "de"), min_image_languages=2, tokenize=tokenize,
                            data_dir=tiny_multi30k)
    assert bilingual.image_ids == ["a.jpg"] and len(bilingual) == 2
    with pytest.raises(ConfigError, match="no captions in es"):
        build_pairs("multi30k", ("en", "es"), min_image_languages=1, tokenize=tokenize, data_dir=shared_data)


def test_m30k_variants_and_their_settings(registry, tiny_multi30k, tmp_path):
    cooc = resolve_model(registry, "imagevec-m30k-cooc")
    features = resolve_model(registry, "imagevec-m30k")
    assert cooc.config["train_data"] == "multi30k" and cooc.config["image_encoder"] == "cooc"
    assert mmbench.Capability.IMAGES not in cooc.model.capabilities
    assert features.config["train_data"] == "multi30k-mini" and features.config["image_encoder"] == "features"
    assert mmbench.Capability.IMAGES in features.model.capabilities
    with pytest.raises(ConfigError, match="unknown train_data 'flickr'"):
        resolve_model(registry, "imagevec", ["train_data=flickr"])
    with pytest.raises(ConfigError, match="SRC-TGT"):
        resolve_model(registry, "imagevec", ["track_alignment=ende"])
    (tiny_multi30k / "multi30k" / "task1" / "image_splits" / "test_2016_flickr.txt").unlink()
    with pytest.raises(ConfigError, match="has no image features"):
        prepare(registry, "imagevec", ["train_data=multi30k", "languages=en,de"], tmp_path / "work", tiny_multi30k)
    with pytest.raises(ConfigError, match="not training on fr"):
        prepare(registry, "imagevec-m30k-cooc", ["languages=en,de", "track_alignment=en-fr"], tmp_path / "work2",
                tiny_multi30k)


# -- learning ---------------------------------------------------------------------------------------

def csls_top1(source: np.ndarray, target: np.ndarray, gold: dict[int, list[int]], k: int = 10) -> float:
    """NumPy reference of the alignment ratio: share of gold sources whose best CSLS target is gold."""
    s = source / np.maximum(np.linalg.norm(source, axis=1, keepdims=True), 1e-12)
    t = target / np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    cos = s @ t.T
    r_target = -np.sort(-cos, axis=1)[:, :k].mean(axis=1)
    r_source = -np.sort(-cos.T, axis=1)[:, :k].mean(axis=1)
    csls = 2 * cos - r_target[:, None] - r_source[None, :]
    return float(np.mean([csls[i].argmax() in targets for i, targets in gold.items()]))


def tracked_values(work_dir: Path, name: str) -> list[tuple[int, float]]:
    return [(r["step"], r[name]) for r in read_metrics(work_dir / "train" / "metrics.jsonl") if name in r]


@pytest.fixture(scope="module")
def cooc(registry, shared_data, tmp_path_factory):
    """imagevec-m30k-cooc shortened for CI: en and de only, 100-d, 3 epochs of 1000 pairs (174 steps)."""
    work_dir = tmp_path_factory.mktemp("m30k-cooc")
    options = ["languages=en,de", "dim=100", "train.epochs=3", "track_alignment=en-de", "track_every=50"]
    return prepare(registry, "imagevec-m30k-cooc", options, work_dir, shared_data), work_dir


def test_cooc_learns_german_translations_of_frequent_words(cooc):
    model, _ = cooc
    german = model.vocabulary("de")
    target, found = model.embed_words(german, "de")
    source, source_found = model.embed_words(list(EN_DE), "en")
    assert found.all() and source_found.all()
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    source /= np.linalg.norm(source, axis=1, keepdims=True)
    similarity = source @ target.T
    gold = similarity[np.arange(len(EN_DE)), [german.index(word) for word in EN_DE.values()]]
    ranks = (similarity > gold[:, None]).sum(axis=1)  # 0: the translation is the nearest German word
    chance_top10 = 10 / len(german)  # a random German word is in the top 10 this often (~0.0006)
    assert len(german) > 15000
    assert (ranks < 10).mean() >= 0.9 > 1000 * chance_top10  # measured: all 15 at rank 0
    assert (ranks == 0).mean() >= 0.7


def test_cooc_tracks_the_alignment_ratio_with_the_muse_train_dictionary(cooc):
    _, work_dir = cooc
    curve = tracked_values(work_dir, "alignment_ratio/en-de")
    assert [step for step, _ in curve] == [0, 50, 100, 150, 174]
    assert all(0.0 <= value <= 1.0 for _, value in curve)
    assert curve[-1][1] > curve[0][1] + 0.25  # measured 0.0 -> 0.43
    notes = [r for r in read_metrics(work_dir / "train" / "metrics.jsonl") if "note/alignment_ratio/en-de" in r]
    assert len(notes) == 1 and notes[0]["step"] == 0
    assert notes[0]["note/alignment_ratio/en-de"].startswith("MUSE en-de.0-5000.txt.gz: ")


@pytest.fixture(scope="module")
def features_models(registry, shared_data, tmp_path_factory):
    """imagevec-m30k shortened (100-d, 2 epochs) on the real pairs, laid out as `mmbench run` would, and
    the same model trained on pairs whose photos were shuffled among the training images (a control)."""
    options = ["dim=100", "hidden=200", "train.epochs=2"]
    base = tmp_path_factory.mktemp("m30k")
    resolved = resolve_model(registry, "imagevec-m30k", [*QUICK, *options])
    work_dir = base / f"imagevec-m30k__{resolved.config_hash}" / "seed-0"
    resolved.model.prepare(mmbench.RunContext(seed=0, device="cpu", work_dir=work_dir, data_dir=shared_data))

    def shuffled_photos(*args, **kwargs):
        pairs = imagevec_data.multi30k_mini_pairs(*args, **kwargs)
        pairs.image_features = pairs.image_features[np.random.default_rng(0).permutation(len(pairs.image_ids))]
        return pairs

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(imagevec_data.SOURCES, "multi30k-mini-shuffled", shuffled_photos)
        control = prepare(registry, "imagevec-m30k", [*options, "train_data=multi30k-mini-shuffled"],
                          base / "control", shared_data)
    return resolved, control, base


def mini_test_retrieval(model, root: Path, language: str) -> dict[str, float]:
    rows = load_multi30k_mini(root)["test"]
    captions = [caption for five in rows[f"captions_{language}"][:] for caption in five]
    images = model.embed_images(feature_array(rows), source=MULTI30K_FEATURE_SOURCE)
    return retrieval_scores(images, model.embed_texts(captions, language), captions_per_image=5,
                            ties="pessimistic")


def test_features_variant_retrieves_test_photos_better_than_a_shuffled_control(features_models, shared_data):
    resolved, control, _ = features_models
    for language in ("en", "de"):
        trained = mini_test_retrieval(resolved.model, shared_data, language)
        shuffled = mini_test_retrieval(control, shared_data, language)
        # Chance t2i R@10 among the 200 test photos: 5%. Measured en: 49 vs 4 for the control.
        assert trained["t2i_r10"] > 30 and shuffled["t2i_r10"] < 12
        assert trained["t2i_r10"] > shuffled["t2i_r10"] + 20 and trained["rsum"] > 3 * shuffled["rsum"]


def test_mmbench_run_scores_the_features_variant_on_multi30k_mini(registry, features_models, shared_data, tmp_path):
    resolved, _, base = features_models
    metrics = (base / f"imagevec-m30k__{resolved.config_hash}" / "seed-0" / "train" / "metrics.jsonl").read_text()
    cards = []
    for name in ("multi30k-mini", "emoji-retrieval"):
        card = select_cards(registry, [name], [])[0]
        cards.append(dataclasses.replace(card, subsets=[s for s in card.subsets if s.name == "en"], aggregate=None))
    outcomes = run(registry, [resolved], cards, RunOptions(results_dir=tmp_path, data_dir=shared_data, work_dir=base))
    by_task = {outcome.task: outcome for outcome in outcomes}
    assert by_task["multi30k-mini"].status == "done", by_task["multi30k-mini"].message
    record = json.loads(by_task["multi30k-mini"].path.read_text())
    assert record["main_score"] == pytest.approx(mini_test_retrieval(resolved.model, shared_data, "en")["rsum"])
    # The emoji drawings are another feature space: skipped, not scored.
    assert by_task["emoji-retrieval"].status == "skipped"
    assert "multi30k/resnet50-avgpool" in by_task["emoji-retrieval"].message
    # `mmbench run` found the trained weights and did not train again.
    assert (base / f"imagevec-m30k__{resolved.config_hash}" / "seed-0" / "train" / "metrics.jsonl").read_text() == metrics
    with pytest.raises(mmbench.Incompatible, match="trained on multi30k/resnet50-avgpool features"):
        resolved.model.embed_images(np.zeros((1, 1280), np.float32), source=EMOJI_FEATURE_SOURCE)


def emoji_single_word_lexicon(model, source: str, target: str) -> dict[int, list[int]]:
    """Emoji train-split concepts named by one word in both languages, as rows of the model's vocabularies."""
    emoji = load_emoji()
    train = set(column_array(emoji.images, "concept")[column_array(emoji.images, "split") == "train"])
    named = {source: {}, target: {}}
    for concept, language, name in zip(column_array(emoji.texts, "concept"), column_array(emoji.texts, "language"),
                                       column_array(emoji.texts, "name")):
        words = name.lower().split()
        if language in named and concept in train and len(words) == 1 and words[0].isalpha():
            named[language][concept] = words[0]
    source_row = {w: i for i, w in enumerate(model.vocabulary(source))}
    target_row = {w: i for i, w in enumerate(model.vocabulary(target))}
    lexicon: dict[int, list[int]] = {}
    for concept, word in named[source].items():
        translation = named[target].get(concept)
        if word in source_row and translation in target_row:
            lexicon.setdefault(source_row[word], []).append(target_row[translation])
    return lexicon


def test_alignment_ratio_rises_during_emoji_training_and_matches_a_reference(registry, tmp_path):
    # No MUSE dictionary under this data root: the emoji names give the lexicon.
    model = prepare(registry, "imagevec", ["languages=en,de", "train.epochs=3", "track_alignment=en-de",
                                           "track_every=10"], tmp_path / "work", tmp_path / "no-data")
    curve = tracked_values(tmp_path / "work", "alignment_ratio/en-de")
    assert [step for step, _ in curve] == [0, 10, 20, 30, 40, 50, 60, 63]
    assert all(0.0 <= value <= 1.0 for _, value in curve)
    assert curve[0][1] < 0.05 and curve[-1][1] > 0.3  # measured 0.0 -> 0.46
    note = tracked_values(tmp_path / "work", "note/alignment_ratio/en-de")[0][1]
    assert note.startswith("emoji train-split single-word names (no MUSE dictionary at ")
    lexicon = emoji_single_word_lexicon(model, "en", "de")
    assert f": {len(lexicon)} en words known" in note and len(lexicon) > 250
    source, _ = model.embed_words(model.vocabulary("en"), "en")
    target, _ = model.embed_words(model.vocabulary("de"), "de")
    assert curve[-1][1] == pytest.approx(csls_top1(source, target, lexicon), abs=1e-6)
