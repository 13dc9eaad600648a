"""The Python API: ``mmbench.evaluate`` with a model built in Python or named like on the command line."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench.errors import MMBenchError


class Trigrams(mmbench.Model):
    """Hashed character trigrams: a tiny deterministic word model built in the test."""

    name = "test-trigrams"
    capabilities = frozenset({mmbench.Capability.WORDS})

    def __init__(self, dim: int = 32):
        super().__init__()
        self.dim = dim
        self.prepared = 0

    def identity(self):
        return {"dim": self.dim}

    def prepare(self, ctx):
        self.prepared += 1

    def embed_words(self, words, language):
        out = np.zeros((len(words), self.dim), dtype=np.float32)
        for row, word in enumerate(words):
            padded = f"<{word.lower()}>"
            for i in range(len(padded) - 2):
                out[row, zlib.crc32(padded[i:i + 3].encode()) % self.dim] += 1.0
        return out, np.ones(len(words), dtype=bool)


def _files(results: Path) -> dict[str, dict]:
    return {p.relative_to(results).as_posix(): json.loads(p.read_text()) for p in results.rglob("*.json")
            if not any(part.startswith(".") for part in p.relative_to(results).parts)}


def test_evaluate_a_model_instance_returns_the_records_it_wrote(tmp_path, shared_data):
    model = Trigrams()
    records = mmbench.evaluate(model, tasks="rg65-xling", output_dir=tmp_path, data_dir=shared_data, device="cpu")
    written = _files(tmp_path)
    assert len(records) == len(written) == 7  # 6 language pairs and the 'all' aggregate
    assert {r["record_id"]: r for r in records} == {r["record_id"]: r for r in written.values()}
    assert {r["model"] for r in records} == {"test-trigrams"} and model.prepared == 1
    record = next(r for r in records if r["subset"] == "en-de")
    assert record["main_score_name"] == "spearman" and -1 <= record["main_score"] <= 1
    assert record["provenance"]["plugin"].startswith("python:")
    # A rerun finds them: same records, nothing prepared, nothing rewritten.
    again = mmbench.evaluate(model, tasks=["rg65-xling"], output_dir=tmp_path, data_dir=shared_data, device="cpu")
    assert again == records and model.prepared == 1
    # Another config of the same class is another model.
    other = mmbench.evaluate(Trigrams(dim=16), tasks="rg65-xling", output_dir=tmp_path, data_dir=shared_data,
                             device="cpu")
    assert {r["config_hash"] for r in other}.isdisjoint({r["config_hash"] for r in records})


def test_evaluate_with_a_limit_is_a_smoke_run_kept_apart(tmp_path, shared_data):
    records = mmbench.evaluate(Trigrams(), tasks="rg65-xling", output_dir=tmp_path, data_dir=shared_data,
                               device="cpu", limit=5)
    assert {r["protocol"] for r in records} == {"multiskip-rg65/dev+test+limit=5"}
    assert all(r["n_items"] <= 5 for r in records if r["subset"] != "all")
    assert all(r["details"]["limit"] == 5 for r in records)
    from mmbench.leaderboard.records import load_records

    kept, warnings = load_records(tmp_path)
    assert kept == [] and any("--limit" in w for w in warnings)


def test_evaluate_by_name_with_a_config_dict(tmp_path, shared_data):
    vectors = tmp_path / "tiny.vec"
    vectors.write_text("2 3\ncat 1 0 0\nKatze 0.9 0.1 0\n", encoding="utf-8")
    records = mmbench.evaluate(f"vectors:{vectors}", tasks="rg65-xling", output_dir=tmp_path / "res",
                               data_dir=shared_data, device="cpu", config={"lowercase": True, "shared_vocabulary": True})
    assert records and all(r["config"]["lowercase"] is True for r in records)
    assert records[0]["model"] == "vectors:tiny.vec"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "cnn-maen", "tasks": "rg65-xling"}, "did you mean 'cnn-mean'"),
    ({"model": "cnn-mean", "tasks": "rg56-xling"}, "did you mean 'rg65-xling'"),
    ({"model": "cnn-mean", "suites": "defualt"}, "did you mean 'default'"),
    ({"model": "cnn-mean", "tasks": "rg65-xling", "seeds": -1}, "seed"),
    ({"model": "cnn-mean", "tasks": "rg65-xling", "limit": 0}, "--limit"),
    ({"model": Trigrams(), "tasks": "rg65-xling", "config": {"dim": 3}}, "build the instance"),
])
def test_bad_input_raises_an_mmbench_error_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(MMBenchError, match=message):
        mmbench.evaluate(output_dir=tmp_path, device="cpu", **kwargs)
    assert _files(tmp_path) == {}


def test_limit_helpers_cut_items_not_protocol_structure():
    from mmbench.kinds import EvalContext, limit_retrieval, limit_rows
    from mmbench.kinds.retrieval_sources import RetrievalData

    ctx = EvalContext(data_dir=Path("."), limit=2)
    assert limit_rows([1, 2, 3], ctx) == [1, 2] and limit_rows([1], ctx) == [1]
    assert limit_rows([1, 2, 3], EvalContext(data_dir=Path("."))) == [1, 2, 3]
    data = RetrievalData(np.zeros((5, 3), np.float32), [f"c{i}" for i in range(10)], 2, "src", "en", 5000, folds=5)
    cut = limit_retrieval(data, ctx)
    assert cut.n_images == 2 and cut.captions == ["c0", "c1", "c2", "c3"] and cut.folds == 1 and cut.n_total == 5000
