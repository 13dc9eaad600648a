"""The retrieval kind's sources: multi30k-mini on real data, COCO 1K/5K and VSE++ folders on files written here.

Every score the kind records is checked against the metric computed here from the same embeddings, with
the image/caption pairing and the fold split rebuilt independently from the data files.
"""

from __future__ import annotations

import json
import re
import types
from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

import mmbench
from mmbench import plugins
from mmbench.cards import load_card, parse_card
from mmbench.cli import main
from mmbench.data.io import feature_array
from mmbench.data.multi30k_mini import load_multi30k_mini
from mmbench.errors import MMBenchError
from mmbench.kinds import EvalContext
from mmbench.kinds.retrieval import Retrieval
from mmbench.kinds.retrieval_sources import MULTI30K_FEATURE_SOURCE, load_retrieval_data
from mmbench.metrics.retrieval import retrieval_scores
from mmbench.runner import RunOptions, resolve_model, run, select_cards

TOKEN = re.compile(r"\w+")
COCO_SPACE = "coco/resnet152-avgpool"
NEW_CARDS = ("multi30k-mini", "multi30k", "coco-1k", "coco-5k")


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


class RidgeBagOfWords(mmbench.Model):
    """Ridge regression from bag-of-words of multi30k-mini TRAIN captions to their image's (PCA-reduced) features."""

    name = "test-ridge-bow"
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES})

    fitted: ClassVar[dict] = {}  # data dir -> fitted state, shared by the runs of this module

    def prepare(self, ctx):
        if ctx.data_dir not in self.fitted:
            self._fit(ctx.data_dir)
            self.fitted[ctx.data_dir] = (self.mean, self.basis, self.vocab, self.maps)
        self.mean, self.basis, self.vocab, self.maps = self.fitted[ctx.data_dir]

    def _fit(self, data_dir):
        train = load_multi30k_mini(data_dir)["train"]
        targets = _unit(np.asarray(feature_array(train), dtype=np.float64))
        self.mean = targets.mean(axis=0)
        # the top 256 principal directions of the train images: a small target keeps the solves fast
        centred = targets - self.mean
        values, vectors = np.linalg.eigh(centred @ centred.T)  # 700 x 700: cheaper than an SVD of 700 x 2048
        top = np.argsort(values)[::-1][:256]
        self.basis = centred.T @ vectors[:, top] / np.sqrt(values[top])
        targets = (targets - self.mean) @ self.basis
        self.vocab, self.maps = {}, {}
        for language in ("en", "de", "fr", "cs"):
            groups = [[c] for c in train[f"caption_{language}"][:]]
            if language in ("en", "de"):
                groups = [g + list(five) for g, five in zip(groups, train[f"captions_{language}"][:])]
            texts = [t for g in groups for t in g]
            y = np.repeat(targets, [len(g) for g in groups], axis=0)
            counts = Counter(w for t in texts for w in set(TOKEN.findall(t.lower())))
            self.vocab[language] = {w: i for i, w in enumerate(sorted(w for w, c in counts.items() if c >= 3))}
            x = self._bow(texts, language)
            gram = (x.T @ x).toarray() + 1.0 * np.eye(x.shape[1])
            self.maps[language] = scipy.linalg.solve(gram, x.T @ y, assume_a="pos")

    def _bow(self, texts, language):
        """L2-normalised word counts, sparse (the Gram matrix of a dense one costs seconds)."""
        vocab = self.vocab[language]
        rows, cols = [], []
        for row, text in enumerate(texts):
            hits = [vocab[w] for w in TOKEN.findall(text.lower()) if w in vocab]
            rows += [row] * len(hits)
            cols += hits
        x = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocab)))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
        return scipy.sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ x

    def embed_texts(self, texts, language):
        if language not in self.maps:
            raise mmbench.Incompatible(f"no {language}")
        return (self._bow(texts, language) @ self.maps[language]).astype(np.float32)

    def embed_images(self, features, *, source):
        if source != MULTI30K_FEATURE_SOURCE:
            raise mmbench.Incompatible(f"not {source}")
        return ((_unit(np.asarray(features, dtype=np.float64)) - self.mean) @ self.basis).astype(np.float32)


class CaptionOracle(mmbench.Model):
    """For the synthetic COCO files: caption 'photo <id> view <k>' -> its image's features plus noise."""

    name = "test-caption-oracle"
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES})
    features_by_id: ClassVar[dict[int, np.ndarray]] = {}

    def embed_texts(self, texts, language):
        out = []
        for text in texts:
            image_id, view = map(int, re.fullmatch(r"photo (\d+) view (\d+)", text).groups())
            noise = np.random.default_rng(image_id * 10 + view).standard_normal(8)
            out.append(self.features_by_id[image_id] + 0.6 * noise)
        return np.asarray(out, dtype=np.float32)

    def embed_images(self, features, *, source):
        if source != COCO_SPACE:
            raise mmbench.Incompatible(f"not {source}")
        return np.asarray(features, dtype=np.float32)


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("retrieval_source_test_models")
    module.register_models = mmbench.hookimpl(lambda register: (register(RidgeBagOfWords), register(CaptionOracle)))
    return plugins.load_plugins(extra_modules=(module,))[1]


def _run(registry, model, task, data_dir, results_dir, tasks_dirs=(), subsets=None):
    resolved = resolve_model(registry, model)
    cards = select_cards(registry, [task], [], tasks_dirs)
    if subsets is not None:
        cards[0].subsets = [s for s in cards[0].subsets if s.name in subsets]
    outcomes = run(registry, [resolved], cards, RunOptions(results_dir=results_dir, data_dir=data_dir))
    return resolved, {o.subset: o for o in outcomes}


def _record(outcome) -> dict:
    assert outcome.status == "done", outcome.message
    return json.loads(outcome.path.read_text())


def _assert_same_scores(recorded: dict, expected: dict) -> None:
    assert recorded.keys() == expected.keys()
    for name, value in expected.items():
        assert recorded[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name


# -- multi30k-mini on the real data ---------------------------------------------------------------
def test_multi30k_mini_ridge_model_far_above_chance_and_scores_match_metric(registry, shared_data, tmp_path):
    resolved, outcomes = _run(registry, "test-ridge-bow", "multi30k-mini", shared_data, tmp_path)
    assert set(outcomes) == {"en", "de", "fr", "cs"}
    test = load_multi30k_mini(shared_data)["test"]
    model = resolved.model
    images = model.embed_images(np.asarray(feature_array(test)), source=MULTI30K_FEATURE_SOURCE)
    assert images.shape[0] == 200

    english = _record(outcomes["en"])
    assert english["protocol"] == "multi30k-mini-v1/test/en-de-5-captions/fr-cs-1-caption"
    assert english["details"]["captions_per_image"] == 5 and english["details"]["n_captions"] == 1000
    assert english["details"]["official"] is False and english["n_items"] == 200 and english["coverage"] == 1.0
    captions = [caption for five in test["captions_en"][:] for caption in five]  # image i: rows 5i..5i+4
    expected = retrieval_scores(images, model.embed_texts(captions, "en"), captions_per_image=5)
    _assert_same_scores(english["scores"], expected)
    # chance: t2i R@10 = 5% (10 of 200 images); a caption->image map trained on other images does far better
    assert english["scores"]["t2i_r10"] > 40 and english["scores"]["i2t_r10"] > 50
    shuffled = retrieval_scores(images[np.random.default_rng(0).permutation(200)],
                                model.embed_texts(captions, "en"), captions_per_image=5)
    assert shuffled["rsum"] < english["scores"]["rsum"] / 3

    french = _record(outcomes["fr"])
    assert french["details"]["captions_per_image"] == 1 and french["details"]["multi30k_task"] == 1
    expected = retrieval_scores(images, model.embed_texts(test["caption_fr"][:], "fr"), captions_per_image=1)
    _assert_same_scores(french["scores"], expected)
    assert french["scores"]["t2i_r10"] > 25


def test_multi30k_official_needs_features_of_the_split(registry, shared_data, tmp_path):
    """test_2016 has features here: the official card runs; a split without features is one clear line."""
    _, outcomes = _run(registry, "test-ridge-bow", "multi30k", shared_data, tmp_path, subsets=("de", "cs"))
    # the ridge model is trained on multi30k-mini train = 700 of these images: only the pipeline is checked
    german = _record(outcomes["de"])
    assert german["n_items"] == 1000 and german["details"]["n_captions"] == 5000 and german["coverage"] == 1.0
    assert german["details"]["multi30k_split"] == "test_2016" and german["details"]["official"] is True
    czech = _record(outcomes["cs"])
    assert czech["details"]["n_captions"] == 1000 and czech["details"]["captions_per_image"] == 1
    assert czech["protocol"] == "multi30k-official/test_2016_flickr"

    card = tmp_path / "cards" / "m30k-2018.toml"
    card.parent.mkdir()
    card.write_text(_card_toml("m30k-2018", {"source": "multi30k"}, split="test_2018_flickr", language="cs"))
    _, outcomes = _run(registry, "test-ridge-bow", "m30k-2018", shared_data, tmp_path / "r2", [card.parent])
    message = outcomes["main"].message
    assert outcomes["main"].status == "error" and "\n" not in message
    assert "test_2018_flickr-resnet50-avgpool.npy: not found" in message


# -- COCO (Karpathy JSON) and VSE++ folders on files in the exact formats ----------------------------
@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    """5000 test images (+ train images mixed in) with 8-d features, as Karpathy JSON + .npz and as VSE++ testall."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("coco-data")
    test_ids = [int(i) for i in rng.choice(10**6, size=5030, replace=False)]
    train_ids, test_ids = test_ids[5000:], test_ids[:5000]
    features = {i: rng.standard_normal(8).astype(np.float32) for i in test_ids + train_ids}
    entries = []
    for position, image_id in enumerate(test_ids):
        if position % 250 == 0 and train_ids:  # other splits interleaved: they must be skipped
            entries.append(_karpathy_entry(train_ids.pop(), "train", 5))
        entries.append(_karpathy_entry(image_id, "test", 6 if position == 3 else 5))  # only the first 5 count
    (root / "coco" / "features").mkdir(parents=True)
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"images": entries, "dataset": "coco"}))
    order = rng.permutation(len(features))  # .npz rows in any order, matched by id
    ids = np.array(list(features))[order]
    np.savez(root / "coco" / "features" / "resnet152-avgpool.npz", ids=ids,
             features=np.stack([features[int(i)] for i in ids]))
    precomp = root / "vsepp" / "coco_precomp"
    precomp.mkdir(parents=True)
    captions = [f"photo {i} view {k}" for i in test_ids for k in range(5)]
    (precomp / "testall_caps.txt").write_text("\n".join(captions) + "\n")
    np.save(precomp / "testall_ims.npy", np.repeat(np.stack([features[i] for i in test_ids]), 5, axis=0))  # SCAN
    CaptionOracle.features_by_id.update(features)
    return root, test_ids, features


def _karpathy_entry(image_id: int, split: str, n: int) -> dict:
    return {"filename": f"COCO_{image_id:012d}.jpg", "cocoid": image_id, "split": split,
            "sentences": [{"raw": f"photo {image_id} view {k}", "tokens": []} for k in range(n)]}


def _card_toml(name: str, params: dict, split: str = "test", language: str = "en", files: tuple = ()) -> str:
    param_lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in params.items())
    file_list = ", ".join(f'{{ path = "{path}" }}' for path in files)
    return f'''name = "{name}"
kind = "retrieval"
description = "test card"
main_score = "rsum"
protocol = "{name}/v1"
license = "test"
citation = "test"
splits = ["{split}"]

[params]
{param_lines}

[[subsets]]
name = "main"
languages = ["{language}"]
files = [{file_list}]
'''


def _reference(test_ids, features):
    images = np.stack([features[i] for i in test_ids])
    captions = CaptionOracle().embed_texts([f"photo {i} view {k}" for i in test_ids for k in range(5)], "en")
    return images, captions


def test_coco_1k_is_the_mean_over_five_folds_and_5k_scores_all(registry, coco_root, tmp_path):
    root, test_ids, features = coco_root
    images, captions = _reference(test_ids, features)
    folds = [retrieval_scores(images[f * 1000:(f + 1) * 1000], captions[f * 5000:(f + 1) * 5000]) for f in range(5)]
    expected_1k = {key: float(np.mean([fold[key] for fold in folds])) for key in folds[0]}

    _, outcomes = _run(registry, "test-caption-oracle", "coco-1k", root, tmp_path)
    record = _record(outcomes["en"])
    _assert_same_scores(record["scores"], expected_1k)
    assert record["protocol"] == "coco-karpathy/test/1k-5fold/5-captions"
    assert record["details"]["folds"] == 5 and record["details"]["fold_images"] == 1000
    assert record["details"]["protocol"] == "1k" and record["n_items"] == 5000
    assert 20 < record["scores"]["t2i_r1"] < 90  # neither trivial nor chance: the folds matter

    _, outcomes = _run(registry, "test-caption-oracle", "coco-5k", root, tmp_path)
    record = _record(outcomes["en"])
    _assert_same_scores(record["scores"], retrieval_scores(images, captions))
    assert "folds" not in record["details"] and record["scores"]["rsum"] < expected_1k["rsum"]


def test_vsepp_folder_gives_the_same_1k_scores_as_the_karpathy_json(registry, coco_root, tmp_path):
    root = coco_root[0]
    cards = tmp_path / "cards"
    cards.mkdir()
    files = ("vsepp/coco_precomp/testall_caps.txt", "vsepp/coco_precomp/testall_ims.npy")
    (cards / "vsepp-1k.toml").write_text(_card_toml(
        "vsepp-1k", {"source": "precomputed", "protocol": "1k", "feature_source": COCO_SPACE}, "testall", files=files))
    _, via_precomp = _run(registry, "test-caption-oracle", "vsepp-1k", root, tmp_path / "a", [cards])
    _, via_json = _run(registry, "test-caption-oracle", "coco-1k", root, tmp_path / "b")
    _assert_same_scores(_record(via_precomp["main"])["scores"], _record(via_json["en"])["scores"])
    assert _record(via_precomp["main"])["details"]["data"] == "vse-precomputed"


def test_precomputed_protocol_all_and_image_count_checks(registry, tmp_path):
    rng = np.random.default_rng(3)
    ids = [10**7 + i for i in range(40)]  # not among the COCO fixture's ids
    CaptionOracle.features_by_id.update({i: rng.standard_normal(8).astype(np.float32) for i in ids})
    folder = tmp_path / "data" / "f30k_precomp"
    folder.mkdir(parents=True)
    (folder / "test_caps.txt").write_text("".join(f"photo {i} view {k}\n" for i in ids for k in range(5)))
    np.save(folder / "test_ims.npy", np.stack([CaptionOracle.features_by_id[i] for i in ids]))
    cards = tmp_path / "cards"
    cards.mkdir()
    files = ("f30k_precomp/test_caps.txt", "f30k_precomp/test_ims.npy")
    for protocol in ("all", "5k"):
        (cards / f"f30k-{protocol}.toml").write_text(_card_toml(
            f"f30k-{protocol}", {"source": "precomputed", "protocol": protocol, "feature_source": COCO_SPACE},
            files=files))
    _, outcomes = _run(registry, "test-caption-oracle", "f30k-all", tmp_path / "data", tmp_path / "r", [cards])
    images, captions = _reference(ids, CaptionOracle.features_by_id)
    _assert_same_scores(_record(outcomes["main"])["scores"], retrieval_scores(images, captions))

    _, outcomes = _run(registry, "test-caption-oracle", "f30k-5k", tmp_path / "data", tmp_path / "r", [cards])
    assert outcomes["main"].status == "error"
    assert outcomes["main"].message.endswith("test_caps.txt: the 5K protocol needs the 5000 test images, found 40")


def test_coco_card_without_data_is_one_line_naming_the_file(registry, tmp_path):
    _, outcomes = _run(registry, "test-caption-oracle", "coco-5k", tmp_path, tmp_path / "results")
    outcome = outcomes["en"]
    assert outcome.status == "error" and "\n" not in outcome.message
    assert "needs coco/dataset_coco.json" in outcome.message and "caption_datasets.zip" in outcome.message


# -- card validation ------------------------------------------------------------------------------
def test_new_cards_validate(capsys):
    tasks = Path(__file__).resolve().parents[1] / "tasks"
    assert main(["validate", *(str(tasks / f"{name}.toml") for name in NEW_CARDS)]) == 0
    assert f"{len(NEW_CARDS)} card(s) checked, 0 problem(s)" in capsys.readouterr().out


def _problems(params: dict, split: str = "test", languages=("en",), files=(), subset_params=None) -> list[str]:
    raw = {"name": "t", "kind": "retrieval", "description": "d", "main_score": "rsum", "protocol": "p",
           "license": "l", "citation": "c", "splits": [split], "params": params,
           "subsets": [{"name": "s", "languages": list(languages), "files": list(files),
                        **({"params": subset_params} if subset_params else {})}]}
    return Retrieval().validate(parse_card(raw, "t.toml"))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"params": {"source": "flickr"}}, "params.source: 'flickr' is not one of"),
        ({"params": {"source": "multi30k-mini", "style": "noto"}}, "params.style: unknown parameter"),
        ({"params": {"source": "multi30k-mini"}, "languages": ("fr",), "subset_params": {"task": 2}},
         "Multi30k task 2 has captions in en, de, not 'fr'"),
        ({"params": {"source": "multi30k-mini"}, "split": "test_2016_flickr"}, "multi30k-mini-v1 splits are"),
        ({"params": {"source": "multi30k", "task": 2}, "split": "test_2017_mscoco"}, "task 2 has no captions"),
        ({"params": {"source": "multi30k"}, "split": "test"}, "use a Multi30k task-1 image split"),
        ({"params": {"source": "coco", "protocol": "1k"}, "files": ("a.json", "b.npz")}, "params.feature_source"),
        ({"params": {"source": "coco", "protocol": "2k", "feature_source": "x/y"}, "files": ("a.json", "b.npz")},
         "params.protocol: '2k' is not one of"),
        ({"params": {"source": "coco", "feature_source": "x/y"}, "files": ("a.json",)}, "one image feature file"),
        ({"params": {"source": "precomputed", "feature_source": "x/y"}, "files": ("test_caps.txt",)},
         "list test_ims.npy exactly once"),
        ({"params": {"source": "precomputed", "feature_source": "x/y"}, "files": ("a/test_caps.txt", "b/test_ims.npy")},
         "must be in one folder"),
        ({"params": {"source": "emoji"}, "languages": ("en", "de")}, "give exactly one caption language"),
        ({"params": {"source": "emoji", "ties": "random"}}, "params.ties: 'random' is not one of"),
    ],
)
def test_validate_checks_params_per_source(kwargs, problem):
    problems = _problems(**kwargs)
    assert any(problem in p for p in problems), problems


def test_validate_accepts_well_formed_cards_of_each_source():
    assert _problems({"source": "emoji", "style": "symbola"}) == []
    assert _problems({"source": "multi30k-mini"}, languages=("cs",)) == []
    assert _problems({"source": "multi30k", "task": 2}, split="test_2016_flickr", languages=("de",)) == []
    assert _problems({"source": "coco", "protocol": "5k", "feature_source": "x/y"}, files=("d.json", "f.npy")) == []
    assert _problems({"source": "precomputed", "feature_source": "x/y", "similarity": "order"}, split="testall",
                     files=("p/testall_caps.txt", "p/testall_ims.npy")) == []


# -- every model output is checked before scoring ---------------------------------------------------
def _set(out, value):
    out = out.copy()
    out[2, 0] = value
    return out


# mode -> (method it spoils, how, the error line for n images = n captions on emoji en).
BAD_RETRIEVAL = {
    "short captions": ("texts", lambda o: o[:-1], lambda n: f"embed_texts(en) returned {n - 1} rows for {n} captions"),
    "extra images": ("images", lambda o: np.vstack([o, o[:3]]),
                     lambda n: f"embed_images(emoji/efficientnet-lite0) returned {n + 3} rows for {n} images"),
    "ragged captions": ("texts", lambda o: [*o[:-1], o[-1][:2]],
                        lambda n: f"embed_texts(en) returned a ragged array for {n} captions "
                                  "(rows of different lengths)"),
    "zero-width images": ("images", lambda o: o[:, :0],
                          lambda n: f"embed_images(emoji/efficientnet-lite0) returned 0-wide vectors for {n} images"),
    "int captions": ("texts", lambda o: o.astype(np.int64),
                     lambda n: "embed_texts(en) returned int64 values for captions, not floating-point numbers"),
    "str images": ("images", lambda o: o.astype(str),
                   lambda n: "embed_images(emoji/efficientnet-lite0) returned <U32 values for images, "
                             "not floating-point numbers"),
    "NaN caption": ("texts", lambda o: _set(o, np.nan),
                    lambda n: f"embed_texts(en) returned NaN for 1 of {n} captions"),
    "+inf image": ("images", lambda o: _set(o, np.inf),
                   lambda n: f"embed_images(emoji/efficientnet-lite0) returned +inf for 1 of {n} images"),
    "-inf caption": ("texts", lambda o: _set(o, -np.inf),
                     lambda n: f"embed_texts(en) returned -inf for 1 of {n} captions"),
    "widths differ": ("texts", lambda o: o[:, :5], lambda n: "returned 8-d images from embed_images("
                      "emoji/efficientnet-lite0) but 5-d captions from embed_texts(en)"),
}


class BadRetrieval(mmbench.Model):
    name = "test-bad-retrieval"
    capabilities = frozenset({mmbench.Capability.TEXT, mmbench.Capability.IMAGES})

    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def _spoiled(self, method, out):
        target, spoil, _ = BAD_RETRIEVAL[self.mode]
        return spoil(out) if method == target else out

    def embed_texts(self, texts, language):
        return self._spoiled("texts", np.random.default_rng(0).standard_normal((len(texts), 8)).astype(np.float32))

    def embed_images(self, features, *, source):
        return self._spoiled("images", np.random.default_rng(1).standard_normal((len(features), 8)).astype(np.float32))


@pytest.mark.parametrize("mode", BAD_RETRIEVAL, ids=list(BAD_RETRIEVAL))
def test_bad_model_output_is_one_line_naming_model_and_method(tmp_path, mode):
    card = load_card(Path(__file__).resolve().parents[1] / "tasks" / "emoji-retrieval.toml")
    subset = next(s for s in card.subsets if s.name == "en")
    n = load_retrieval_data(card, subset, tmp_path).n_images
    with pytest.raises(MMBenchError) as info:
        Retrieval().evaluate(BadRetrieval(mode), card, subset, EvalContext(data_dir=tmp_path))
    assert str(info.value) == f"model 'test-bad-retrieval' {BAD_RETRIEVAL[mode][2](n)}"
