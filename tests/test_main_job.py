"""The README's main job: `mmbench run --model cnn-mean --suite default` on the embedded emoji data."""

from __future__ import annotations

import json
import types

import numpy as np

import mmbench
from mmbench import plugins
from mmbench.cli import main
from mmbench.runner import RunOptions, resolve_model, run, select_cards
from mmbench_plugins.cnn_mean import CnnMean, tokenize

CHANCE_RSUM = 2 * (1 + 5 + 10) / 365 * 100  # 365 test concepts, one caption each


def test_main_job_scores_far_above_chance(tmp_path, capsys):
    assert main(["run", "--model", "cnn-mean", "--suite", "default", "--output-dir", str(tmp_path),
                 "--device", "cpu"]) == 0
    records = {(r["task"], r["subset"]): r for r in (json.loads(p.read_text()) for p in tmp_path.rglob("*.json"))}
    assert len(records) == 35  # emoji-retrieval and emoji-matching (12 languages + mean), caption-xling-emoji (8 + mean)
    english = records[("emoji-retrieval", "en")]
    assert english["n_items"] == 365 and english["coverage"] == 1.0
    assert english["protocol"] == "emoji-v1/noto/test/1-caption" and english["details"]["ties"] == "pessimistic"
    assert english["main_score"] > 8 * CHANCE_RSUM
    assert english["scores"]["t2i_r10"] > 20 and english["scores"]["i2t_r10"] > 20  # chance: 2.7
    assert records[("emoji-retrieval", "all")]["main_score"] > 5 * CHANCE_RSUM
    assert "35 record(s) written" in capsys.readouterr().out


class ShuffledImages(CnnMean):
    """Negative control: the same model with images paired to the wrong names."""

    name = "cnn-mean-shuffled"

    def embed_images(self, features, *, source):
        embedded = super().embed_images(features, source=source)
        return embedded[np.random.default_rng(0).permutation(len(embedded))]


def test_shuffled_pairing_scores_at_chance(tmp_path):
    module = types.ModuleType("control_plugin")
    module.register_models = mmbench.hookimpl(lambda register: register(ShuffledImages))
    _, registry = plugins.load_plugins(extra_modules=(module,))
    cards = [c for c in select_cards(registry, ["emoji-retrieval"], []) ]
    card = cards[0]
    card.subsets = [s for s in card.subsets if s.name == "en"]
    card.aggregate = None
    (outcome,) = run(registry, [resolve_model(registry, "cnn-mean-shuffled")], [card],
                     RunOptions(results_dir=tmp_path, data_dir=tmp_path))
    assert outcome.status == "done"
    assert outcome.main_score < 3 * CHANCE_RSUM


def test_tokenizer_keeps_combining_marks_inside_words():
    assert tokenize("मुस्कुराता चेहरा") == ["मुस्कुराता", "चेहरा"]
    assert tokenize("Grinning face: big-eyes") == ["grinning", "face", "big", "eyes"]
    assert tokenize("وجهٌ مبتسم") == ["وجهٌ", "مبتسم"]
