"""`mmbench inspect`: error analysis from a record's per-item outputs.

Records are built here from known items, and the worst items, distributions and scores the command shows
are checked against an independent computation (SciPy ranks, NumPy recall); real records come from a run
of cnn-mean on the embedded emoji tasks and of a small vectors file on crosslingual RG-65.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from scipy.stats import pearsonr, rankdata, spearmanr
from test_leaderboard import make_record

from mmbench.cli import main
from mmbench.inspect import inspect_record
from mmbench.results import encode_column, encode_items

RNG = np.random.default_rng(7)


def wordsim_record(n: int = 60, uncovered: tuple[int, ...] = (3, 17, 40), **overrides) -> tuple[dict, np.ndarray,
                                                                                                   np.ndarray]:
    gold = np.round(RNG.uniform(0, 10, size=n), 2)
    sims = np.round(gold / 10 + 0.3 * RNG.normal(size=n), 5)
    sims[list(uncovered)] = np.nan
    scored = np.isfinite(sims)
    scores = {"spearman": float(spearmanr(sims[scored], gold[scored]).statistic),
              "pearson": float(pearsonr(sims[scored], gold[scored]).statistic)}
    items = encode_items("pair", n, {"similarity": encode_column(sims.tolist(), decimals="exact"),
                                     "gold": encode_column(gold.tolist(), decimals="exact"),
                                     "covered": encode_column(scored.astype(int).tolist())})
    fields = {"schema_version": 2, "task": "my-sim", "subset": "en", "main_score": scores["spearman"],
              "scores": scores, "coverage": float(scored.mean()), "n_items": n,
              "details": {"oov_policy": "drop", "items": items}}
    return make_record(**{**fields, **overrides}), sims, gold


def write(folder: Path, record: dict, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{record['subset']}__{record['record_id']}.json")
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def inspect_json(capsys, *args) -> dict:
    assert main(["inspect", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def rows(report: dict, table: str) -> list[dict]:
    return report["tables"][table]["rows"]


def assert_scores_reproduced(report: dict, record: dict, expected_missing: set[str] = frozenset()) -> None:
    recomputed = {row["score"]: row for row in report["scores"]}
    assert set(recomputed) | set(report["not_recomputed"]) == set(record["scores"])
    assert set(report["not_recomputed"]) == set(expected_missing)
    for name, row in recomputed.items():
        assert row["recomputed"] == pytest.approx(record["scores"][name], abs=1e-9), name
        assert row["record"] == record["scores"][name] and row["matches"] is True


# -- word similarity -----------------------------------------------------------------------------------------
def test_word_similarity_lists_the_pairs_furthest_from_their_gold_rank(tmp_path, capsys):
    record, sims, gold = wordsim_record()
    path = write(tmp_path, record)
    report = inspect_json(capsys, path, "--top", "7")
    scored = np.flatnonzero(np.isfinite(sims))
    difference = rankdata(sims[scored]) - rankdata(gold[scored])
    expected = sorted(range(len(scored)), key=lambda j: (-abs(difference[j]), scored[j]))[:7]
    worst = rows(report, "worst_pairs")
    assert [row["index"] for row in worst] == [int(scored[j]) for j in expected]
    assert [row["rank diff"] for row in worst] == pytest.approx([difference[j] for j in expected])
    assert [row["model rank"] - row["gold rank"] for row in worst] == pytest.approx([difference[j] for j in expected])
    assert worst[0]["gold"] == gold[worst[0]["index"]] and worst[0]["similarity"] == sims[worst[0]["index"]]
    assert report["summary"] == {"pairs": 60, "covered": 57, "uncovered": 3, "scored": 57}
    assert [row["index"] for row in rows(report, "uncovered")] == [3, 17, 40]
    assert_scores_reproduced(report, record)
    assert report["n"] == 60 and report["unit"] == "pair" and report["record"]["task"] == "my-sim"
    # No card 'my-sim': the items are shown by position, and the report says why.
    assert report["named"] is False and "pair" not in worst[0]
    assert any("by position" in note and "my-sim" in note for note in report["notes"])


def test_the_table_shows_the_same_worst_pairs(tmp_path, capsys):
    record, sims, gold = wordsim_record()
    path = write(tmp_path, record)
    report = inspect_record(record, path, top=3, names=False)
    assert main(["inspect", str(path), "--top", "3", "--no-names"]) == 0
    captured = capsys.readouterr()
    assert "spearman" in captured.out
    lines = captured.out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("pairs whose model rank"))
    shown = [int(line.split()[0]) for line in lines[first + 1:] if line.strip()[:1].isdigit()][:3]
    assert shown == [row[0] for row in report.tables[0].rows]
    assert "--no-names" in captured.err


def test_a_record_whose_items_do_not_give_its_score_is_flagged(tmp_path, capsys):
    record, _, _ = wordsim_record()
    record["scores"]["spearman"] = record["main_score"] = 0.99
    report = inspect_json(capsys, write(tmp_path, record), "--no-names")
    spearman = next(row for row in report["scores"] if row["score"] == "spearman")
    assert spearman["matches"] is False and spearman["record"] == 0.99
    assert any("do not reproduce" in note and "spearman" in note for note in report["notes"])


# -- BLI -------------------------------------------------------------------------------------------------------
def bli_record(ranks: list[int | None], task_kind: str = "bli", **details) -> dict:
    found = np.array([r for r in ranks if r is not None], dtype=float)
    scores = {f"p{k}": float(100 * (found < k).mean()) for k in (1, 5, 10)}
    scores["mrr"] = float(np.mean(1 / (found + 1)))
    return make_record(schema_version=2, task="my-bli", task_kind=task_kind, subset="en-de", main_score_name="p1",
                       main_score=scores["p1"], scores=scores, coverage=len(found) / len(ranks), n_items=len(ranks),
                       details={"items": encode_items("source-word", len(ranks), {"rank": encode_column(ranks)}),
                                **details})


def test_bli_rank_distribution_and_worst_source_words(tmp_path, capsys):
    ranks = [0, 3, None, 7, 250, 0, 12, None, 4999, 1, 0, 99, 1500, None, 9]
    record = bli_record(ranks)
    report = inspect_json(capsys, write(tmp_path, record), "--top", "4")
    assert_scores_reproduced(report, record)
    found = np.array([r for r in ranks if r is not None])
    one_based = found + 1
    expected = {"1": (one_based == 1).sum(), "2-5": ((one_based >= 2) & (one_based <= 5)).sum(),
                "6-10": ((one_based >= 6) & (one_based <= 10)).sum(),
                "11-100": ((one_based >= 11) & (one_based <= 100)).sum(),
                "101-1000": ((one_based >= 101) & (one_based <= 1000)).sum(), ">1000": (one_based > 1000).sum()}
    distribution = {row["rank"]: row["queries"] for row in rows(report, "rank_distribution")}
    assert distribution == {key: int(value) for key, value in expected.items()}
    assert sum(distribution.values()) == len(found)
    worst = rows(report, "worst_queries")
    assert [(row["index"], row["rank"]) for row in worst] == [(8, 5000), (12, 1501), (4, 251), (11, 100)]
    assert [row["index"] for row in rows(report, "not_queried")] == [2, 7, 13]
    summary = report["summary"]
    assert (summary["source_words"], summary["queries"], summary["not_queried"]) == (15, 12, 3)
    assert summary["not_queried_share"] == pytest.approx(3 / 15)
    assert summary["p1_all_words"] == pytest.approx(100 * 3 / 15)  # three rank-0 queries among 15 words


def test_visual_bli_scores_per_part_of_speech_are_recomputed(tmp_path, capsys):
    ranks = [0, 2, None, 15, 0, 40, 1]
    tags = ["N", "NV", "-", "V", "A", "N", "V"]
    record = bli_record(ranks, task_kind="visual-bli", mrr_variant="best-gold")
    record["details"]["items"]["pos"] = " ".join(tags)
    for tag in "ANV":
        kept = np.array([r for r, t in zip(ranks, tags) if r is not None and tag in t], dtype=float)
        record["scores"][f"p1_{tag}"] = float(100 * (kept < 1).mean())
        record["scores"][f"mrr_{tag}"] = float(np.mean(1 / (kept + 1)))
    report = inspect_json(capsys, write(tmp_path, record), "--top", "2")
    assert_scores_reproduced(report, record)
    assert [(row["index"], row["pos"]) for row in rows(report, "worst_queries")] == [(5, "N"), (3, "V")]
    record["details"]["mrr_variant"] = "per-pair"  # the items keep best-gold ranks only
    report = inspect_json(capsys, write(tmp_path, record, "per-pair.json"))
    assert "mrr" in report["not_recomputed"] and "p1_N" not in report["not_recomputed"]


# -- retrieval -------------------------------------------------------------------------------------------------
def retrieval_scores(i2t: np.ndarray, t2i: np.ndarray, folds: int = 1) -> dict[str, float]:
    """VSE++ scores from 0-based ranks, computed here with NumPy, fold by fold."""
    per_fold = []
    for i_part, t_part in zip(np.array_split(i2t, folds), np.array_split(t2i, folds)):
        scores = {}
        for name, ranks in (("i2t", i_part), ("t2i", t_part)):
            scores.update({f"{name}_r{k}": 100 * float(np.mean(ranks < k)) for k in (1, 5, 10)})
            scores[f"{name}_medr"] = float(np.floor(np.median(ranks)) + 1)
            scores[f"{name}_meanr"] = float(ranks.mean() + 1)
        scores["rsum"] = sum(scores[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10))
        per_fold.append(scores)
    return {name: float(np.mean([fold[name] for fold in per_fold])) for name in per_fold[0]}


def retrieval_record(n_images: int, per_image: int, folds: int = 1) -> tuple[dict, np.ndarray, np.ndarray]:
    fold_images = n_images // folds
    i2t = RNG.integers(0, fold_images * per_image, size=n_images)
    t2i = RNG.integers(0, fold_images, size=n_images * per_image)
    scores = retrieval_scores(i2t, t2i, folds)
    items = encode_items("image", n_images, {"i2t_rank": encode_column(i2t.tolist()),
                                             "t2i_rank": encode_column(t2i.tolist())}, per_item={"t2i_rank": per_image})
    details = {"captions_per_image": per_image, "items": items, **({"folds": folds} if folds > 1 else {})}
    record = make_record(schema_version=2, task="my-retrieval", task_kind="retrieval", subset="en",
                         main_score_name="rsum", main_score=scores["rsum"], scores=scores, coverage=1.0,
                         n_items=n_images, details=details)
    return record, i2t, t2i


def test_retrieval_recall_curve_worst_queries_and_medr(tmp_path, capsys):
    record, i2t, t2i = retrieval_record(n_images=200, per_image=5)
    report = inspect_json(capsys, write(tmp_path, record), "--top", "5")
    assert_scores_reproduced(report, record)  # medr and meanr included
    curve = {row["K"]: row for row in rows(report, "recall_at_k")}
    assert sorted(curve) == [1, 5, 10, 20, 50, 100]  # 200 image candidates: K = 500 would say nothing
    for k, row in curve.items():
        assert row["i2t"] == pytest.approx(100 * np.mean(i2t < k)) and row["t2i"] == pytest.approx(100 * np.mean(t2i < k))
    worst_images = sorted(range(len(i2t)), key=lambda i: (-i2t[i], i))[:5]
    assert [(row["index"], row["rank"]) for row in rows(report, "worst_i2t")] == [(i, i2t[i] + 1) for i in worst_images]
    worst_captions = sorted(range(len(t2i)), key=lambda j: (-t2i[j], j))[:5]
    assert [(row["index"], row["image"], row["rank"]) for row in rows(report, "worst_t2i")] == [
        (j, j // 5, t2i[j] + 1) for j in worst_captions]
    assert report["summary"]["i2t_medr"] == np.floor(np.median(i2t)) + 1
    assert report["summary"]["t2i_queries"] == 1000


def test_coco_style_folds_average_medr_like_the_record(tmp_path, capsys):
    record, _, _ = retrieval_record(n_images=50, per_image=5, folds=5)  # medr: the mean of the folds' medr
    report = inspect_json(capsys, write(tmp_path, record))
    assert_scores_reproduced(report, record)
    assert max(row["K"] for row in rows(report, "recall_at_k")) == 10  # 10 images per fold


def test_caption_retrieval_is_inspected_per_direction(tmp_path, capsys):
    a2b, b2a = RNG.integers(0, 30, size=30), RNG.integers(0, 30, size=30)
    scores = {f"{d}{name[3:]}": value for d, source in (("a2b", "i2t"), ("b2a", "t2i"))
              for name, value in retrieval_scores(a2b, b2a).items() if name.startswith(source)}
    scores["rsum"] = sum(scores[f"{d}_r{k}"] for d in ("a2b", "b2a") for k in (1, 5, 10))
    items = encode_items("pair", 30, {"a2b_rank": encode_column(a2b.tolist()), "b2a_rank": encode_column(b2a.tolist())})
    record = make_record(schema_version=2, task="my-captions", task_kind="caption-retrieval", subset="en-de",
                         main_score_name="rsum", main_score=scores["rsum"], scores=scores, n_items=30,
                         details={"items": items})
    report = inspect_json(capsys, write(tmp_path, record), "--top", "3")
    assert_scores_reproduced(report, record)
    assert [row["index"] for row in rows(report, "worst_b2a")] == sorted(range(30), key=lambda i: (-b2a[i], i))[:3]
    assert "de texts" in report["tables"]["worst_b2a"]["title"]


# -- classification and other kinds ------------------------------------------------------------------------------
def test_classification_lists_misclassified_documents(tmp_path, capsys):
    correct = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    record = make_record(schema_version=2, task="my-docs", task_kind="document-classification", subset="en",
                         main_score_name="accuracy", main_score=60.0, scores={"accuracy": 60.0}, n_items=10,
                         details={"items": encode_items("document", 10, {"correct": encode_column(correct)})})
    report = inspect_json(capsys, write(tmp_path, record), "--top", "3")
    assert_scores_reproduced(report, record)
    assert [row["index"] for row in rows(report, "misclassified")] == [1, 4, 5]
    assert report["summary"] == {"documents": 10, "correct": 6, "wrong": 4}
    assert any("no confusion counts" in note for note in report["notes"])


# -- picking a record out of a results directory ---------------------------------------------------------------
def test_filters_pick_one_record_and_several_matches_are_a_usage_error(tmp_path, capsys):
    folder = tmp_path / "results"
    for subset in ("en", "de"):
        for seed in (0, 1):
            record, _, _ = wordsim_record(subset=subset, seed=seed)
            write(folder / subset / f"seed-{seed}", record)
    (folder / ".runs").mkdir()
    (folder / ".runs" / "metrics.json").write_text("{}", encoding="utf-8")  # logs are not records
    report = inspect_json(capsys, "--results-dir", folder, "--task", "my-sim", "--subset", "de", "--seed", "1")
    assert (report["record"]["subset"], report["record"]["seed"]) == ("de", 1)
    assert inspect_json(capsys, folder, "--subset", "en", "--seed", "0")["record"]["subset"] == "en"

    assert main(["inspect", "--results-dir", str(folder), "--task", "my-sim", "--seed", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count(".json") == 2 and "2 records match" in err and "--subset" in err and "--seed," not in err
    assert main(["inspect", "--results-dir", str(folder), "--task", "my-simm"]) == 1
    err = capsys.readouterr().err
    assert "did you mean 'my-sim'" in err and len(err.strip().splitlines()) == 1
    assert main(["inspect", "--results-dir", str(tmp_path / "nowhere")]) == 1
    assert "results directory not found" in capsys.readouterr().err
    path = next(folder.rglob("*.json"))
    assert main(["inspect", str(path), "--seed", "0"]) == 2  # a record file is not filtered
    assert main(["inspect", str(path), "--results-dir", str(folder)]) == 2


# -- errors: one line, no traceback ------------------------------------------------------------------------------
def test_records_without_usable_items_are_one_error_line(tmp_path, capsys):
    record, _, _ = wordsim_record()
    cases = {
        "schema-1": ({**make_record(), "schema_version": 1}, "schema-1 record has no per-item outputs"),
        "no-items": (make_record(schema_version=2, task_kind="image-word-matching", details={"seed": 0}),
                     "the image-word-matching kind does not record them"),
        "all": (make_record(schema_version=2, subset="all", details={"aggregate": "mean", "subsets": ["en", "de"]}),
                "is the mean of the card's subsets (en, de)"),
        "short-column": ({**record, "details": {"items": {**record["details"]["items"], "n": 61}}},
                         "damaged per-item outputs"),
        "not-a-number": ({**record, "details": {"items": encode_items("pair", 2, {"rank": "0 x"})}},
                         "does not read as a number"),
    }
    for name, (data, message) in cases.items():
        path = write(tmp_path, data, f"{name}.json")
        assert main(["inspect", str(path)]) == 1, name
        err = capsys.readouterr().err
        assert message in err and err.startswith("Error:") and len(err.strip().splitlines()) == 1, (name, err)
    assert main(["inspect", str(tmp_path / "missing.json")]) == 1
    assert "no record or results directory" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text('{"schema_version": 2', encoding="utf-8")
    assert main(["inspect", str(tmp_path / "broken.json")]) == 1
    assert "invalid JSON" in capsys.readouterr().err


def test_a_schema_one_record_fails_cleanly_in_a_real_process(tmp_path):
    path = write(tmp_path, make_record())
    result = run_cli(["inspect", path])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "schema-1 record has no per-item outputs" in result.stderr and result.stdout == ""


# -- real records ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emoji_results(tmp_path_factory) -> Path:
    import mmbench

    folder = tmp_path_factory.mktemp("emoji-results")
    mmbench.evaluate("cnn-mean", tasks=["emoji-retrieval", "emoji-matching"], output_dir=folder)
    return folder


def test_a_real_retrieval_record_is_named_and_reproduced(emoji_results, capsys):
    from mmbench.kinds.retrieval_sources import emoji_pairs

    report = inspect_json(capsys, emoji_results, "--task", "emoji-retrieval", "--subset", "de", "--top", "5")
    path = Path(report["path"])
    record = json.loads(path.read_text(encoding="utf-8"))
    assert_scores_reproduced(report, record)
    assert report["named"] is True and report["n"] == record["n_items"]
    names = emoji_pairs("de", "test", "noto")[1]
    i2t = np.array([float(v) for v in record["details"]["items"]["columns"]["i2t_rank"].split()])
    expected = sorted(range(len(i2t)), key=lambda i: (-i2t[i], i))[:5]
    assert [(row["index"], row["image (first caption)"], row["rank"]) for row in rows(report, "worst_i2t")] == [
        (i, names[i], int(i2t[i]) + 1) for i in expected]
    assert main(["inspect", str(path)]) == 0
    assert names[expected[0]] in capsys.readouterr().out


def test_a_real_matching_record_has_no_items(emoji_results, capsys):
    assert main(["inspect", str(emoji_results), "--task", "emoji-matching", "--subset", "en"]) == 1
    assert "image-word-matching kind does not record them" in capsys.readouterr().err


def test_a_real_word_similarity_record_names_its_pairs(shared_data, tmp_path, capsys):
    import mmbench

    files = [shared_data / "wordsim" / "crosslingual" / f"en+de.rg65.{part}.txt" for part in ("dev", "test")]
    pairs = [line.split("\t")[:2] for path in files for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    words = sorted({word for pair in pairs for word in pair})
    random.Random(0).shuffle(words)
    vectors = tmp_path / "vectors.txt"
    rng = np.random.default_rng(0)
    vectors.write_text("".join(f"{word} {' '.join(f'{v:.4f}' for v in rng.normal(size=8))}\n"
                               for word in words[: int(0.9 * len(words))]), encoding="utf-8")
    mmbench.evaluate(f"vectors:{vectors}", tasks=["rg65-xling"], output_dir=tmp_path / "results",
                     data_dir=shared_data, raise_error=False)
    report = inspect_json(capsys, tmp_path / "results", "--subset", "en-de", "--data-dir", shared_data, "--top", "3")
    assert report["named"] is True and report["n"] == len(pairs)
    for row in rows(report, "worst_pairs") + rows(report, "uncovered"):
        first, second = pairs[row["index"]]
        assert row["pair"] == f"{first.split(':', 1)[1]} / {second.split(':', 1)[1]}"
    record = json.loads(Path(report["path"]).read_text(encoding="utf-8"))
    assert_scores_reproduced(report, record)
    assert report["summary"]["uncovered"] == report["n"] - round(record["coverage"] * report["n"])
