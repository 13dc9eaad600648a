"""The text-only baseline (``skipgram``/``fasttext``, mmbench.train.skipgram): it learns translations on the
real Multi30k captions, the alignment is what makes them findable, training is reproducible, the cache
and the text export round-trip, and the contamination ids match the cards'. Short CPU runs (about a
minute on 2 cores): one small training per module, shared by the learning tests."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import mmbench
from mmbench.cards import DATA_ID_RE, data_overlap, discover_cards
from mmbench.cli import main as cli_main
from mmbench.config import build_config
from mmbench.data.muse import load_muse_dictionary, muse_dictionary_path
from mmbench.errors import DataError
from mmbench.kinds import EvalContext
from mmbench.metrics.bli import bli_scores
from mmbench.plugins import load_plugins
from mmbench.runner import resolve_model
from mmbench.train import skipgram as sg
from mmbench_plugins import skipgram as plugin
from mmbench_plugins.vectors import WordVectors

# Small but real: 100-d, 10 epochs on the 29,000 en and de training captions (~10 s each on one core).
SMALL = {"languages": ("en", "de"), "dim": 100, "epochs": 10}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(shared_data):
    """en and de word2vec vectors (normalised, unaligned) and the en-de dictionary rows."""
    config = sg.SkipgramConfig(**SMALL)
    trained = sg.train_languages(config, shared_data, seed=0)
    words = {lang: mono.words for lang, mono in trained.items()}
    normalized = {lang: mono.normalized for lang, mono in trained.items()}
    index = {lang: {w: i for i, w in enumerate(words[lang])} for lang in words}
    train_path = muse_dictionary_path(shared_data, "en", "de", "train")
    train_pairs = [(d, e) for e, d in sg.dictionary_pairs(train_path, index["en"], index["de"])]
    return config, words, index, normalized, train_pairs


def held_out_queries(shared_data, index):
    """en row -> de rows of every en-de pair (full dictionary) whose words are both *not* in the 0-5000
    training file, restricted to words both vocabularies have (the 5000-6500 test words are among them)."""
    train = load_muse_dictionary(muse_dictionary_path(shared_data, "en", "de", "train"))
    seen_en, seen_de = set(train["source"][:]), set(train["target"][:])
    full = load_muse_dictionary(muse_dictionary_path(shared_data, "en", "de", "full"))
    queries: dict[int, list[int]] = {}
    for en, de in zip(full["source"][:], full["target"][:]):
        if en not in seen_en and de not in seen_de and en in index["en"] and de in index["de"]:
            queries.setdefault(index["en"][en], []).append(index["de"][de])
    return queries


def p_at_1(english, german, queries):
    return bli_scores(torch.from_numpy(english), torch.from_numpy(german), queries, method="csls", ks=(1,))["p1"]


def mapped(vectors, mapping):
    return sg.unit_rows(vectors @ mapping.T)


# -- learning --------------------------------------------------------------------------------------

def test_aligned_vectors_translate_held_out_words_far_above_controls(shared_data, trained):
    config, words, index, normalized, train_pairs = trained
    queries = held_out_queries(shared_data, index)
    assert len(queries) >= 300  # enough held-out words for the percentages to mean something
    en, de = normalized["en"], normalized["de"]
    procrustes, _ = sg.fit_mapping(de, en, train_pairs, dataclasses.replace(config, align="procrustes"))
    rcsls, info = sg.fit_mapping(de, en, train_pairs, config)
    rotation = np.linalg.qr(np.random.default_rng(0).standard_normal((config.dim, config.dim)))[0].astype(np.float32)
    scores = {
        "procrustes": p_at_1(en, mapped(de, procrustes), queries),
        "rcsls": p_at_1(en, mapped(de, rcsls), queries),
        "unaligned": p_at_1(en, de, queries),
        "random rotation": p_at_1(en, mapped(de, rotation), queries),
    }
    chance = 100.0 / len(words["de"])  # one guess among the German vocabulary
    print(f"held-out en->de CSLS P@1 over {len(queries)} words (chance {chance:.3f}): {scores}")
    assert scores["procrustes"] > 12 and scores["rcsls"] > 12
    assert scores["unaligned"] < 2 and scores["random rotation"] < 2
    assert min(scores["procrustes"], scores["rcsls"]) > 10 * max(scores["unaligned"], scores["random rotation"], chance)
    # RCSLS optimises its own loss down from the Procrustes start, and does not lose the translations.
    assert info["rcsls_losses"][-1] < info["rcsls_losses"][0]
    assert scores["rcsls"] >= scores["procrustes"] - 3


def test_procrustes_mapping_is_orthogonal_and_uses_train_pairs_only(shared_data, trained):
    config, words, index, normalized, train_pairs = trained
    mapping, info = sg.fit_mapping(normalized["de"], normalized["en"], train_pairs,
                                   dataclasses.replace(config, align="procrustes"))
    np.testing.assert_allclose(mapping @ mapping.T, np.eye(config.dim), atol=1e-4)
    assert info["pairs"] == len(train_pairs) > 1000
    test = load_muse_dictionary(muse_dictionary_path(shared_data, "en", "de", "test"))
    test_words = set(test["source"][:])
    assert not any(words["en"][e] in test_words for _, e in train_pairs)


# -- the plugin: cache, export, reproducibility --------------------------------------------------------

TINY = ["languages=en,de", "dim=24", "epochs=1", "min_count=5", "rcsls.iterations=3"]


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra_modules=(plugin,))[1]


def prepared(registry, options, work_dir, data_dir, name="skipgram", **context):
    model = resolve_model(registry, name, options).model
    model.prepare(mmbench.RunContext(seed=0, work_dir=work_dir, data_dir=data_dir, **context))
    return model


def test_plugin_caches_by_config_and_exports_a_vectors_file(registry, shared_data, tmp_path, monkeypatch):
    model = prepared(registry, TINY, tmp_path, shared_data)
    directory = model.vectors.directory
    assert directory.parent == tmp_path and directory.name.startswith("skipgram-")
    assert {p.name for p in directory.iterdir()} == {"skipgram.json", "vectors.safetensors"}
    assert model.languages() == ["en", "de"] and model.vocabulary("en")[:3] == ["a", "in", "the"]
    info = model.vectors.info
    assert info["alignment"]["de"]["dictionary"] == "en-de.0-5000.txt.gz"
    # German words of the de-en test set are never aligned on (they are en-de train targets too).
    assert info["alignment"]["de"]["excluded_pairs"] > 100
    assert info["alignment"]["de"]["excluded_because"] == "de-en.5000-6500.txt.gz"
    assert len(info["alignment"]["de"]["rcsls_losses"]) == 4

    # A second prepare (and any model asking through the core function) loads: nothing is trained.
    monkeypatch.setattr(sg, "train_monolingual", lambda *a, **k: pytest.fail("trained again"))
    again = prepared(registry, TINY, tmp_path, shared_data)
    assert again.vectors.directory == directory
    config = build_config(sg.SkipgramConfig, {k: v for k, v in (o.split("=") for o in TINY)})
    direct = sg.aligned_skipgram_vectors(config, shared_data, tmp_path, seed=0)
    np.testing.assert_array_equal(direct.vectors["de"], model.vectors.vectors["de"])
    # Evaluation only (mmbench eval): loads, and refuses to train what is not there.
    prepared(registry, TINY, tmp_path, shared_data, train=False)
    with pytest.raises(DataError, match="no trained vectors"):
        prepared(registry, TINY, tmp_path / "elsewhere", shared_data, train=False)
    # An explicit checkpoint: the cache directory itself, or the work dir holding it.
    for checkpoint in (directory, tmp_path):
        loaded = prepared(registry, TINY, tmp_path / "x", shared_data, checkpoint=checkpoint)
        assert loaded.vectors.words == model.vectors.words

    # The text export (`mmbench skipgram-export WORK_DIR OUT`) reads back through vectors:PATH bit for
    # bit, in the same order: identical scores.
    assert cli_main(["skipgram-export", str(tmp_path), str(tmp_path / "out.vec")]) == 0
    exported = WordVectors(argument=str(tmp_path / "out.vec"))
    exported.prepare(mmbench.RunContext())
    assert exported.languages() == ["de", "en"]
    for lang in ("en", "de"):
        vocabulary = model.vocabulary(lang)
        assert exported.vocabulary(lang) == vocabulary
        ours, found = model.embed_words(vocabulary + ["qqqq"], lang)
        theirs, found_there = exported.embed_words(vocabulary + ["qqqq"], lang)
        assert found.tolist() == found_there.tolist() == [True] * len(vocabulary) + [False]
        assert np.array_equal(ours, theirs)
    card = discover_cards()[0]["muse-bli"]
    subset = next(s for s in card.subsets if s.name == "en-de")
    scores = [registry.task_kind("bli").evaluate(m, card, subset, EvalContext(data_dir=shared_data)).scores
              for m in (model, exported)]
    assert scores[0] == scores[1] and scores[0]["mrr"] > 0

    # Texts are the mean of their known words; unknown languages are a skip, not a failure.
    texts = model.embed_texts(["Ein Hund läuft.", "qqqq", ""], "de")
    words, _ = model.embed_words(["ein", "hund", "läuft"], "de")
    np.testing.assert_allclose(texts[0], words.mean(axis=0), rtol=1e-6)
    assert not texts[1].any() and not texts[2].any()
    with pytest.raises(mmbench.Incompatible):
        model.embed_words(["chat"], "fr")


def test_training_is_bit_reproducible_across_processes_and_hash_seeds(shared_data, tmp_path):
    """workers=1: same seed, same bits, whatever Python's hash salt (gensim 4.4 never uses ``hash`` to seed)."""
    script = (
        "import hashlib, sys; from pathlib import Path; from mmbench.train import skipgram as sg\n"
        "captions, _ = sg.multi30k_train_captions(Path(sys.argv[1]), 'de')\n"
        "for subwords in (False, True):\n"
        "    config = sg.SkipgramConfig(languages=('de',), pivot='de', dim=16, epochs=1, subwords=subwords,"
        " bucket=20000)\n"
        "    mono = sg.train_monolingual(sg.Corpus(captions[:4000]), config, seed=int(sys.argv[2]))\n"
        "    print(hashlib.sha256(mono.vectors.tobytes() + mono.ngram_vectors.tobytes() if subwords else"
        " mono.vectors.tobytes()).hexdigest())\n"
    )

    def digests(hash_seed, seed=0):
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "MMBENCH_CACHE_DIR": str(tmp_path)}
        done = subprocess.run([sys.executable, "-c", script, str(shared_data), str(seed)], env=env,
                              capture_output=True, text=True, check=True)
        return done.stdout.split()

    first = digests(1)
    assert len(first) == 2 and digests(2) == first  # another process, another hash salt: the same bits
    captions, _ = sg.multi30k_train_captions(shared_data, "de")
    config = sg.SkipgramConfig(languages=("de",), pivot="de", dim=16, epochs=1)
    again = sg.train_monolingual(sg.Corpus(captions[:4000]), config, seed=0).vectors
    assert hashlib.sha256(again.tobytes()).hexdigest() == first[0]  # and this process's random salt
    other = sg.train_monolingual(sg.Corpus(captions[:4000]), config, seed=1).vectors
    assert not np.array_equal(other, again)  # the seed matters


def test_fasttext_gives_unseen_words_vectors_from_their_ngrams(shared_data, tmp_path):
    config = sg.SkipgramConfig(languages=("de",), pivot="de", subwords=True, dim=50, epochs=3, bucket=50_000,
                               align="none")
    vectors = sg.aligned_skipgram_vectors(config, shared_data, tmp_path, seed=0)
    assert vectors.subwords and len(vectors.ngram_ids["de"]) > 10_000
    # Frequent words rebuilt from their n-grams alone land near their own trained vector.
    words = vectors.words["de"][50:250]
    rebuilt = np.stack([vectors.subword_vector(w, "de") for w in words])
    own = (rebuilt * vectors.vectors["de"][50:250]).sum(axis=1)
    others = rebuilt @ vectors.vectors["de"][1000:1200].T
    assert np.median(own) > 0.5 > np.median(others) + 0.3
    # An unseen word (a feminine form of a caption word) is built from its n-grams, close to its stem word;
    # without subwords it is not found.
    out, found = vectors.embed_words(["fußballspielerin", "fußballspieler"], "de")
    assert "fußballspielerin" not in vectors.index("de") and found.all()
    assert float(out[0] @ out[1]) > 0.8
    assert vectors.embed_words(["fußballspielerin"], "de", subwords=False)[1].tolist() == [False]


# -- config, corpora and the contamination guard --------------------------------------------------------

def test_set_corpus_adds_a_users_text_files(registry, shared_data, tmp_path):
    extra = tmp_path / "extra.de.txt"
    extra.write_text("Der Flurbel tanzt.\n\nEin Flurbel singt im Regen.\n" * 5, encoding="utf-8")
    model = resolve_model(registry, "skipgram", [f"corpus.de={extra}", "languages=de", "pivot=de", "dim=8",
                                                 "epochs=1", "min_count=5"]).model
    assert model.config.corpus == {"de": (str(extra),)}
    model.prepare(mmbench.RunContext(seed=0, work_dir=tmp_path / "w", data_dir=shared_data))
    assert "flurbel" in model.vocabulary("de")
    # The same file by content: identity follows it, so editing it makes a new model (a new hash).
    before = model.identity()
    extra.write_text("anders\n", encoding="utf-8")
    edited = resolve_model(registry, "skipgram", [f"corpus.de={extra}", "languages=de", "pivot=de"]).model
    assert edited.identity() != before
    # Only a user's corpus, no Multi30k: a language Multi30k lacks is fine, a language without text is not.
    only = build_config(sg.SkipgramConfig, {"corpus.es": f"{extra},{extra}", "languages": "es", "pivot": "es",
                                            "multi30k": "false"})
    assert only.corpus == {"es": (str(extra), str(extra))} and only.seen_data() == frozenset()
    with pytest.raises(Exception, match="no training text for es"):
        build_config(sg.SkipgramConfig, {"languages": "en,es"})
    with pytest.raises(Exception, match="not a file"):
        sg.aligned_skipgram_vectors(dataclasses.replace(only, corpus={"es": (str(tmp_path / "missing"),)}),
                                    shared_data, tmp_path)


def test_seen_data_names_the_training_captions_and_train_dictionaries():
    seen = sg.SkipgramConfig().seen_data()
    assert seen == {"multi30k:train", "muse:en-de.0-5000", "muse:en-fr.0-5000", "muse:en-cs.0-5000"}
    assert all(DATA_ID_RE.match(i) for i in seen)
    # Never the test dictionaries or any evaluation split of Multi30k.
    assert data_overlap(seen, ["muse:en-de.5000-6500", "muse:de-en.5000-6500", "multi30k:test_2016_flickr"]) == []
    assert data_overlap(seen, ["muse:en-de.0-5000"]) == ["muse:en-de.0-5000"]
    assert sg.SkipgramConfig(align="none").seen_data() == {"multi30k:train"}
    # Keeping the pairs the reverse test set shares with the train file means having seen that test set.
    kept = sg.SkipgramConfig(languages=("en", "de"), reverse_test="keep").seen_data()
    assert data_overlap(kept, ["muse:de-en.5000-6500", "muse:en-de.5000-6500"]) == ["muse:de-en.5000-6500"]
    models = {name: plugin.Skipgram(build_config(sg.SkipgramConfig, defaults)) for name, (defaults, _) in
              plugin.VARIANTS.items()}
    assert models["fasttext"].config.subwords and models["fasttext-wiki"].config.bucket == 2_000_000


def test_cache_key_follows_what_changes_the_vectors():
    inputs = {"en": {"multi30k": "a" * 64}}
    procrustes = sg.SkipgramConfig(align="procrustes")
    key = sg.cache_key(procrustes, 0, inputs)
    # Settings that do not apply (RCSLS under Procrustes, n-grams without subwords) and corpus paths
    # (files count by content, in ``inputs``) leave the key alone ...
    assert sg.cache_key(dataclasses.replace(procrustes, rcsls=sg.RcslsConfig(lr=5.0), bucket=7,
                                            corpus={"en": ("/moved/file.txt",)}), 0, inputs) == key
    # ... everything else changes it.
    rcsls = sg.SkipgramConfig()
    changed = [(procrustes, 1, inputs), (procrustes, 0, {"en": {"multi30k": "b"}}), (rcsls, 0, inputs),
               (dataclasses.replace(rcsls, rcsls=sg.RcslsConfig(lr=5.0)), 0, inputs),
               (dataclasses.replace(procrustes, dim=100), 0, inputs)]
    assert len({key, *(sg.cache_key(*args) for args in changed)}) == 6


def test_the_muse_cards_declare_their_test_dictionaries_so_the_guard_can_act():
    cards, _ = discover_cards()
    kept = sg.SkipgramConfig(languages=("en", "de"), reverse_test="keep").seen_data()
    for name in ("muse-bli", "muse-bli-nn"):
        by_subset = {s.name: s.evaluates_on for s in cards[name].subsets}
        assert by_subset["de-en"] == ("muse:de-en.5000-6500",)
        assert data_overlap(kept, by_subset["de-en"]) and not data_overlap(kept, by_subset["en-de"])
        assert not data_overlap(sg.SkipgramConfig().seen_data(), [i for ids in by_subset.values() for i in ids])
