"""What benchmark data mmbench knows, where it lives under the data root, and how to get it.

Nothing here is shipped with mmbench: several sets are non-commercial or restricted, so users place
the files under their data root (see ``mmbench.data.root``). ``catalog_status`` says what is present;
``dataset_counts`` loads a dataset with its loader and counts rows per split / language.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmbench.data import (
    multi30k,
    multi30k_mini,
    muse,
    rcv,
    retrieval_sets,
    sib200,
    visual_bli,
    wordsim,
)
from mmbench.errors import DataError

Counts = dict[str, Any]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    description: str
    paths: tuple[str, ...]  # relative to the data root; the dataset is present when all exist
    license: str
    source: str
    obtain: str
    count: Callable[[Path, Path | None], Counts]


# ------------------------------------------------------------------------------------- counting


def _count_multi30k(task: Literal[1, 2]) -> Callable[[Path, Path | None], Counts]:
    def count(root: Path, cache_dir: Path | None) -> Counts:
        splits = multi30k.TASK1_SPLITS if task == 1 else multi30k.TASK2_SPLITS
        counts: Counts = {}
        for split in splits:
            try:
                languages = multi30k.multi30k_languages(root, task=task, split=split)
            except DataError:  # split not provided (task-2 test_2017 ships images without captions)
                continue
            ds = multi30k.load_multi30k(root, task=task, split=split, features=False, cache_dir=cache_dir)
            counts[split] = {"images": len(ds), "languages": languages}
        if not counts:
            raise DataError(f"{root / 'multi30k'}: no task-{task} captions. {multi30k.HOW_TO_GET}")
        return counts

    return count


def _count_multi30k_features(root: Path, cache_dir: Path | None) -> Counts:
    counts: Counts = {}
    for path in sorted((root / "multi30k" / "features").glob("*-resnet50-avgpool.npy")):
        split = path.name[: -len("-resnet50-avgpool.npy")]
        if split in multi30k.TASK1_SPLITS:
            ds = multi30k.load_multi30k(root, task=1, split=split, languages=[], features=True, cache_dir=cache_dir)
            counts[split] = {"images": len(ds), "dim": ds.features["features"].length}
    return counts


def _count_wordsim(folder: str) -> Callable[[Path, Path | None], Counts]:
    def count(root: Path, cache_dir: Path | None) -> Counts:
        base = root / "wordsim" / folder
        counts: Counts = {}
        for path in sorted(base.rglob("*.txt")):
            # Plain monolingual files carry no language: it is the name of their folder (en/, de/, ...).
            languages = None if wordsim.has_language_prefixes(path) else (path.parent.name, path.parent.name)
            counts[str(path.relative_to(base))] = len(
                wordsim.load_wordsim(path, languages=languages, cache_dir=cache_dir)
            )
        return counts

    return count


def _count_muse(root: Path, cache_dir: Path | None) -> Counts:
    counts: Counts = {}
    for path in sorted((root / "muse" / "dictionaries").glob("*.txt.gz")):
        pair, _, rest = path.name.partition(".")
        split = {"txt.gz": "full", "0-5000.txt.gz": "train", "5000-6500.txt.gz": "test"}.get(rest)
        if split is None:
            continue
        ds = muse.load_muse_dictionary(path, cache_dir=cache_dir)
        counts.setdefault(pair, {})[split] = {"pairs": len(ds), "sources": len(ds.unique("source"))}
    return counts


def _count_rcv(root: Path, cache_dir: Path | None) -> Counts:
    languages = rcv.rcv_languages(root)
    if not languages:
        raise DataError(f"{root / 'rcv'}: no language has train and test data. {rcv.HOW_TO_GET}")
    counts: Counts = {}
    for lang in languages:
        ds = rcv.load_rcv(root, lang, cache_dir=cache_dir)
        counts[lang] = {split: len(part) for split, part in ds.items()}
    return counts


def _count_sib200(root: Path, cache_dir: Path | None) -> Counts:
    per_language = {}
    for lang in sib200.sib200_languages(root):
        ds = sib200.load_sib200(root, lang, cache_dir=cache_dir)
        per_language[lang] = {split: len(part) for split, part in ds.items()}
    shapes = Counter(tuple(sorted(c.items())) for c in per_language.values())
    counts: Counts = {"languages": len(per_language)}
    if len(shapes) == 1:
        counts["per_language"] = per_language[next(iter(per_language))]
    else:
        counts["per_language"] = per_language
    return counts


def _count_cldi(root: Path, cache_dir: Path | None) -> Counts:
    counts: Counts = {}
    for path in sorted((root / "visual_bli").glob("imgWords_en_*.txt")):
        ds = visual_bli.load_cldi_pairs(path, cache_dir=cache_dir)
        pair = path.stem[len("imgWords_") :].replace("_", "-")
        counts[pair] = {"pairs": len(ds), **dict(sorted(Counter(ds["pos"][:]).items()))}
    return counts


def _count_bergsma(root: Path, cache_dir: Path | None) -> Counts:
    ds = visual_bli.load_bergsma500(root / "visual_bli" / "bergsma500", cache_dir=cache_dir)
    return {"words": len(ds), "languages": ds.column_names}


def _count_karpathy(relative: str) -> Callable[[Path, Path | None], Counts]:
    def count(root: Path, cache_dir: Path | None) -> Counts:
        counts: Counts = {}
        for split in retrieval_sets.KARPATHY_SPLITS:
            try:
                ds = retrieval_sets.load_coco_karpathy(root / relative, None, split, cache_dir=cache_dir)
            except DataError as exc:
                if retrieval_sets.NO_IMAGES_IN_SPLIT in str(exc):
                    continue
                raise
            counts[split] = {"images": len(ds), "captions": CAPTIONS * len(ds)}
        return counts

    return count


def _count_precomputed(relative: str) -> Callable[[Path, Path | None], Counts]:
    def count(root: Path, cache_dir: Path | None) -> Counts:
        counts: Counts = {}
        for caps in sorted((root / relative).glob("*_caps.txt")):
            split = caps.name[: -len("_caps.txt")]
            ds = retrieval_sets.load_precomputed(root / relative, split, cache_dir=cache_dir)
            counts[split] = {"images": len(ds), "captions": CAPTIONS * len(ds)}
        return counts

    return count


CAPTIONS = retrieval_sets.CAPTIONS_PER_IMAGE
_MULTI30K_LICENSE = "non-commercial research and education only (Flickr30K terms)"
_COCO_LICENSE = "COCO annotations CC BY 4.0; images under Flickr terms"
_PRECOMP_OBTAIN = "https://github.com/fartashf/vsepp (data.tar) or https://github.com/kuanghuei/SCAN (data.zip)"

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="multi30k-task1",
        description="Multi30k task 1: one caption per image in en/de/fr/cs",
        paths=("multi30k/task1/raw", "multi30k/task1/image_splits"),
        license=_MULTI30K_LICENSE,
        source="Elliott et al. 2016, Multi30K: Multilingual English-German Image Descriptions",
        obtain="https://github.com/multi30k/dataset (data/task1)",
        count=_count_multi30k(1),
    ),
    CatalogEntry(
        name="multi30k-mini-v1",
        description="NOT official Multi30k: 700/100/200 train/val/test split of the 1000 test-2016 photos "
        "(ResNet-50 features, 5 en + 5 de captions, fr/cs translations)",
        paths=("multi30k/features/test_2016_flickr-resnet50-avgpool.npy", "multi30k/task1/raw",
               "multi30k/task1/image_splits", "multi30k/task2/raw", "multi30k/task2/image_splits"),
        license=_MULTI30K_LICENSE,
        source="mmbench protocol on Elliott et al. 2016 Multi30K test 2016 (split by sha256 of image name)",
        obtain="https://github.com/multi30k/dataset (data/task1, data/task2, official test_2016 features)",
        count=lambda root, cache_dir: {
            split: {"images": len(rows)}
            for split, rows in multi30k_mini.load_multi30k_mini(root, cache_dir=cache_dir).items()
        },
    ),
    CatalogEntry(
        name="multi30k-task2",
        description="Multi30k task 2: five independent en and de captions per image",
        paths=("multi30k/task2/raw", "multi30k/task2/image_splits"),
        license=_MULTI30K_LICENSE,
        source="Elliott et al. 2016, Multi30K",
        obtain="https://github.com/multi30k/dataset (data/task2)",
        count=_count_multi30k(2),
    ),
    CatalogEntry(
        name="multi30k-features",
        description="ResNet-50 average-pool features of Multi30k images ({split}-resnet50-avgpool.npy)",
        paths=("multi30k/features",),
        license=_MULTI30K_LICENSE,
        source="features of the Flickr30k images of each Multi30k split",
        obtain="official features linked from https://github.com/multi30k/dataset, or extract them from the images",
        count=_count_multi30k_features,
    ),
    CatalogEntry(
        name="wordsim-crosslingual",
        description="Crosslingual RG-65 word similarity, 15 language pairs, dev/test halves",
        paths=("wordsim/crosslingual",),
        license="research data, no explicit license",
        source="Camacho-Collados et al. 2015; Ammar et al. 2016 (multiSkip evaluation suite)",
        obtain="https://github.com/wammar/multilingual-embeddings-eval-portal (eval-data/wordsim)",
        count=_count_wordsim("crosslingual"),
    ),
    CatalogEntry(
        name="wordsim-monolingual",
        description="Monolingual word similarity sets (en, de, es, fr, it, fa)",
        paths=("wordsim/monolingual",),
        license="per set (MUSE copies CC BY-NC 4.0)",
        source="wordvectors.org (Faruqui & Dyer 2014); MUSE (Conneau et al. 2018)",
        obtain="https://github.com/mfaruqui/eval-word-vectors; "
        "https://github.com/facebookresearch/MUSE (data/get_evaluation.sh)",
        count=_count_wordsim("monolingual"),
    ),
    CatalogEntry(
        name="muse-dictionaries",
        description="MUSE bilingual dictionaries: full, train (0-5000), test (5000-6500)",
        paths=("muse/dictionaries",),
        license="CC BY-NC 4.0",
        source="Conneau et al. 2018, Word Translation Without Parallel Data",
        obtain="https://github.com/facebookresearch/MUSE (data/get_evaluation.sh)",
        count=_count_muse,
    ),
    CatalogEntry(
        name="rcv",
        description="RCV1/RCV2 crosslingual document classification, 7 languages, 4 labels",
        paths=("rcv",),
        license="Reuters corpus terms: research use, no redistribution",
        source="Klementiev et al. 2012, Inducing Crosslingual Distributed Representations of Words",
        obtain="RCV1/RCV2 from NIST (https://trec.nist.gov/data/reuters/reuters.html); split from "
        "https://github.com/wammar/multilingual-embeddings-eval-portal",
        count=_count_rcv,
    ),
    CatalogEntry(
        name="sib200",
        description="SIB-200 topic classification, 205 languages, 7 topics",
        paths=("sib200",),
        license="Apache-2.0 (annotations); text Flores-200 CC BY-SA 4.0",
        source="Adelani et al. 2024, SIB-200",
        obtain="https://github.com/dadelani/sib-200 or HF dataset Davlan/sib200",
        count=_count_sib200,
    ),
    CatalogEntry(
        name="cldi",
        description="Hartmann & Søgaard 2018 word lists for lexicon induction from images (en-de/es/fr/it/ru)",
        paths=("visual_bli/imgWords_en_de.txt",),
        license="research data, no explicit license",
        source="Hartmann & Søgaard 2018, Limitations of Cross-Lingual Learning from Image Search",
        obtain="https://github.com/coastalcph/cldi_from_image_search",
        count=_count_cldi,
    ),
    CatalogEntry(
        name="bergsma500",
        description="Bergsma & Van Durme 500 concrete nouns, line-aligned in 6 languages",
        paths=("visual_bli/bergsma500",),
        license="research data",
        source="Bergsma & Van Durme 2011, Learning Bilingual Lexicons Using the Visual Similarity of Labeled Web "
        "Images",
        obtain="https://github.com/etsuko030/Uranus_mtlb (pictureWords.{lang}.txt)",
        count=_count_bergsma,
    ),
    CatalogEntry(
        name="coco-karpathy",
        description="COCO captions in the Karpathy split (dataset_coco.json)",
        paths=("coco/dataset_coco.json",),
        license=_COCO_LICENSE,
        source="Karpathy & Fei-Fei 2015; Lin et al. 2014 (COCO)",
        obtain="https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip "
        "or HF dataset yerevann/coco-karpathy",
        count=_count_karpathy("coco/dataset_coco.json"),
    ),
    CatalogEntry(
        name="coco-stair-ja",
        description="Japanese STAIR Captions converted to the Karpathy JSON shape",
        paths=("coco/dataset_coco_stair_ja.json",),
        license="STAIR Captions CC BY 4.0",
        source="Yoshikawa et al. 2017, STAIR Captions",
        obtain="https://github.com/STAIR-Lab-CIT/STAIR-captions",
        count=_count_karpathy("coco/dataset_coco_stair_ja.json"),
    ),
    CatalogEntry(
        name="coco-yj-ja",
        description="Japanese YJ Captions converted to the Karpathy JSON shape",
        paths=("coco/dataset_coco_yj_ja.json",),
        license="YJ Captions CC BY-SA 4.0",
        source="Miyazaki & Shimizu 2016, Cross-Lingual Image Caption Generation",
        obtain="https://github.com/yahoojapan/YJCaptions",
        count=_count_karpathy("coco/dataset_coco_yj_ja.json"),
    ),
    CatalogEntry(
        name="coco-precomp",
        description="VSE++/SCAN precomputed COCO features and captions",
        paths=("coco_precomp",),
        license=_COCO_LICENSE,
        source="Faghri et al. 2018 (VSE++); Lee et al. 2018 (SCAN)",
        obtain=_PRECOMP_OBTAIN,
        count=_count_precomputed("coco_precomp"),
    ),
    CatalogEntry(
        name="f30k-precomp",
        description="VSE++/SCAN precomputed Flickr30k features and captions",
        paths=("f30k_precomp",),
        license="Flickr30K terms: non-commercial research",
        source="Faghri et al. 2018 (VSE++); Lee et al. 2018 (SCAN)",
        obtain=_PRECOMP_OBTAIN,
        count=_count_precomputed("f30k_precomp"),
    ),
)


def catalog_entry(name: str) -> CatalogEntry:
    for entry in CATALOG:
        if entry.name == name:
            return entry
    raise DataError(f"unknown dataset {name!r}; known: {', '.join(e.name for e in CATALOG)}")


def catalog_status(root: Path) -> list[dict[str, Any]]:
    """One dict per dataset: ``name``, ``path`` (first relative path), ``present``, ``license``, ``obtain``."""
    root = Path(root)
    return [
        {
            "name": entry.name,
            "path": entry.paths[0],
            "present": all((root / p).exists() for p in entry.paths),
            "license": entry.license,
            "obtain": entry.obtain,
        }
        for entry in CATALOG
    ]


def dataset_counts(name: str, root: Path, *, cache_dir: Path | None = None) -> Counts:
    """Rows per split / language of one dataset, computed by loading it."""
    entry = catalog_entry(name)
    root = Path(root)
    missing = [p for p in entry.paths if not (root / p).exists()]
    if missing:
        raise DataError(
            f"{name} is not under {root}: missing {', '.join(missing)}. Get it from {entry.obtain} ({entry.license})."
        )
    return entry.count(root, cache_dir)
