"""A model is never scored on data it trained on: cards say what they score (``evaluates_on``), models
say what they have seen (``seen_data``), and the runner skips overlapping units without preparing the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cards import valid_card, write_card

from mmbench import plugins
from mmbench.cards import data_overlap, load_card
from mmbench.runner import RunOptions, resolve_model, run, select_cards

TASKS = Path(__file__).resolve().parents[1] / "tasks"


@pytest.mark.parametrize(("seen", "evaluated", "overlap"), [
    ({"multi30k:test_2016_flickr"}, ["multi30k:test_2016_flickr"], ["multi30k:test_2016_flickr"]),
    ({"multi30k-mini-v1:train"}, ["multi30k-mini-v1:test"], []),  # same dataset, other split
    ({"multi30k:train"}, ["multi30k-mini-v1:train"], []),  # another dataset
    ({"emoji:train"}, ["emoji:all"], ["emoji:all"]),  # "all" holds every split
    ({"emoji:all"}, ["emoji:test"], ["emoji:test"]),
    (set(), ["emoji:test"], []),
    ({"emoji:train"}, [], []),
])
def test_data_overlap(seen, evaluated, overlap):
    assert data_overlap(seen, evaluated) == overlap


def test_subsets_inherit_the_card_evaluates_on_unless_they_set_their_own(tmp_path):
    card = valid_card()
    card["evaluates_on"] = ["demo:test"]
    card["subsets"][1]["evaluates_on"] = ["demo:dev", "other:test"]
    parsed = load_card(write_card(tmp_path, card))
    assert [s.evaluates_on for s in parsed.subsets] == [("demo:test",), ("demo:dev", "other:test")]


def test_packaged_cards_declare_what_they_score():
    expected = {"multi30k": "multi30k:test_2016_flickr", "caption-xling": "multi30k:test_2016_flickr",
                "multi30k-mini": "multi30k-mini-v1:test", "emoji-retrieval": "emoji:test",
                "emoji-matching": "emoji:test", "caption-xling-emoji": "emoji:test", "visual-bli": "emoji:all"}
    for name, data_id in expected.items():
        card = load_card(TASKS / f"{name}.toml")
        assert all(s.evaluates_on == (data_id,) for s in card.subsets), name


def test_a_model_trained_on_test_images_is_not_scored_on_them_and_not_trained(tmp_path, shared_data, monkeypatch):
    from mmbench_plugins.imagevec import ImageVec

    def no_training(self, ctx):
        raise AssertionError("a model whose every unit is skipped must not be prepared")

    monkeypatch.setattr(ImageVec, "prepare", no_training)
    registry = plugins.get_registry()
    resolved = resolve_model(registry, "imagevec-m30k")  # trains on multi30k-mini train = test_2016 photos
    cards = select_cards(registry, ["multi30k", "caption-xling"], [], [])
    outcomes = run(registry, [resolved], cards, RunOptions(results_dir=tmp_path, data_dir=shared_data))
    units = [o for o in outcomes if o.subset != "all"]
    assert units and all(o.status == "skipped" for o in units)
    assert all(o.message == "model trained on multi30k:test_2016_flickr, which this task scores" for o in units)
    assert not list(tmp_path.rglob("*.json"))
    # Its own evaluation split is disjoint from what it trained on, and emoji-trained models keep emoji:test.
    mini = load_card(TASKS / "multi30k-mini.toml")
    assert not data_overlap(resolved.model.seen_data(), mini.subsets[0].evaluates_on)
    for spec in ("imagevec", "cnn-mean"):
        assert resolve_model(registry, spec).model.seen_data() == {"emoji:train"}
