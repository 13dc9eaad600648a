"""Where the ``retrieval`` kind's images and captions come from: one loader per card ``source``.

Every source gives a :class:`RetrievalData`: image ``features`` (N rows), ``captions`` (N*k strings,
contiguous: captions ``k*i .. k*i+k-1`` describe image ``i``), the feature-space name handed to
``model.embed_images(features, source=...)``, and ``n_total`` (images the protocol has; coverage is
N / n_total). Sources, chosen by the card param ``source``:

* ``emoji`` — the packaged emoji data: each ``split`` concept's image in one ``style``, its CLDR name in
  the subset's language as its one caption (concepts without a name lower the coverage).
* ``multi30k-mini`` — the NON-official ``multi30k-mini-v1`` split (``mmbench.data.multi30k_mini``):
  ``task = 2`` (default for en/de) gives five captions per image, ``task = 1`` (default for fr/cs) the one
  translated caption.
* ``multi30k`` — official Multi30k splits (``subset.split`` is the task-1 image split, e.g.
  ``test_2016_flickr``; task 2 reads the same images' five captions, ``test_2016``), features from
  ``<data root>/multi30k/features/{split}-resnet50-avgpool.npy``.
* ``precomputed`` — a VSE++/SCAN folder: the subset's files are ``{split}_caps.txt`` and ``{split}_ims.npy``.
* ``coco`` — a Karpathy split JSON (COCO, Flickr30k, STAIR...) and a ``.npy``/``.npz`` feature file.

``precomputed`` and ``coco`` take ``protocol``: ``"5k"`` (exactly 5000 images), ``"1k"`` (5000 images,
scores averaged over five contiguous folds of 1000, VSE++ ``fold5``) or ``"all"``; and ``feature_source``,
the name of the feature space their feature file holds (a model declares which spaces it can embed).

:func:`load_retrieval_data` returns exactly what a model is asked to embed for one subset, in order; use it
to export a task's inputs for an external model (see ``mmbench_plugins.precomputed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cards import DataFile, Subset, TaskCard
from ..data import EMOJI_FEATURE_SOURCE, MULTI30K_FEATURE_SOURCE  # noqa: F401 (re-exported for the kinds)
from ..errors import DataError

COMMON_PARAMS: dict[str, tuple] = {
    "source": (),  # checked against SOURCES
    "ties": ("pessimistic", "optimistic"),
    "similarity": ("cosine", "dot", "order"),
}
DEFAULTS = {"source": "emoji", "ties": "pessimistic", "similarity": "cosine"}
COCO_1K_IMAGES = 5000


@dataclass
class RetrievalData:
    features: np.ndarray  # (N, D) or (N, R, D) float32
    captions: list[str]  # N * captions_per_image, grouped by image
    captions_per_image: int
    feature_source: str  # passed to model.embed_images(features, source=...)
    language: str  # passed to model.embed_texts(captions, language)
    n_total: int  # images in the protocol (coverage = N / n_total)
    folds: int = 1  # > 1: scores are averaged over this many contiguous folds (COCO 1K)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return int(self.features.shape[0])


@dataclass(frozen=True)
class Source:
    name: str
    params: dict[str, tuple]  # source-specific params -> allowed values (empty tuple: any)
    load: Callable[[TaskCard, Subset, dict[str, Any], Path], RetrievalData]
    check: Callable[[Subset, dict[str, Any]], list[str]]  # problems as 'field: problem'


def merged_params(card: TaskCard, subset: Subset) -> dict[str, Any]:
    """Defaults, then the card's params, then the subset's."""
    return {**DEFAULTS, **card.params, **subset.params}


def load_retrieval_data(card: TaskCard, subset: Subset, data_dir: Path) -> RetrievalData:
    """The features and captions of one subset, exactly as the kind hands them to a model."""
    params = merged_params(card, subset)
    source = SOURCES.get(params["source"])
    if source is None:
        raise DataError(f"task {card.name!r}: unknown retrieval source {params['source']!r}")
    return source.load(card, subset, params, Path(data_dir))


def _flatten(groups: list[list[str]], k: int, where: str) -> list[str]:
    """Captions of each image, concatenated; every image must have exactly ``k``."""
    for index, group in enumerate(groups):
        if len(group) != k:
            raise DataError(f"{where}: image {index} has {len(group)} captions, expected {k}")
    return [caption for group in groups for caption in group]


# -- emoji ----------------------------------------------------------------------------------------
def emoji_names(language: str) -> dict[str, str]:
    """The CLDR name of every emoji concept named in ``language`` (concept id -> name)."""
    from ..data.emoji import load_emoji
    from ..data.io import column_array

    texts = load_emoji().texts
    rows = np.flatnonzero(column_array(texts, "language") == language)
    if rows.size == 0:
        raise DataError(f"emoji: no names in language {language!r} (see `mmbench data info emoji`)")
    return dict(zip(column_array(texts, "concept")[rows].tolist(), column_array(texts, "name")[rows].tolist()))


def emoji_pairs(language: str, split: str, style: str) -> tuple[np.ndarray, list[str], int]:
    """Features of the ``style`` image of every ``split`` concept named in ``language``, and the names.

    Returns (features, names, n_concepts_in_split) with one caption per image, sorted by concept id.
    """
    from ..data.emoji import load_emoji
    from ..data.io import column_array

    emoji = load_emoji()
    splits = column_array(emoji.images, "split")
    styles = column_array(emoji.images, "style")
    rows = np.flatnonzero((splits == split) & (styles == style))
    if rows.size == 0:
        raise DataError(f"emoji: no {style} images in split {split!r}")
    concepts = column_array(emoji.images, "concept")[rows]
    name_of = emoji_names(language)
    order = sorted((c, r) for c, r in zip(concepts, rows) if c in name_of)
    feature_matrix = emoji.features_matrix()
    features = feature_matrix[[r for _, r in order]]
    names = [name_of[c] for c, _ in order]
    return features, names, int(rows.size)


def _load_emoji(card: TaskCard, subset: Subset, params: dict[str, Any], data_dir: Path) -> RetrievalData:
    style = params.get("style", "noto")
    features, names, n_total = emoji_pairs(subset.languages[0], subset.split, style)
    return RetrievalData(features, names, 1, EMOJI_FEATURE_SOURCE, subset.languages[0], n_total,
                         details={"style": style})


def _check_emoji(subset: Subset, params: dict[str, Any]) -> list[str]:
    if len(subset.languages) != 1:
        return [f"subsets.{subset.name}.languages: give exactly one caption language"]
    return []


# -- Multi30k -------------------------------------------------------------------------------------
TASK1_LANGUAGES = ("en", "de", "fr", "cs")
TASK2_LANGUAGES = ("en", "de")
MINI_SPLITS = ("train", "val", "test")


def multi30k_task(params: dict[str, Any], language: str) -> int:
    """``task`` param, else 2 (five captions) where Multi30k has them (en, de), else 1."""
    return int(params.get("task", 2 if language in TASK2_LANGUAGES else 1))


def _task1_to_task2() -> dict[str, str]:
    from ..data.multi30k import TASK2_TO_TASK1

    return {task1: task2 for task2, task1 in TASK2_TO_TASK1.items()}


def _multi30k_captions(rows: Any, language: str, task: int, where: str) -> tuple[list[str], int]:
    if task == 2:
        return _flatten(rows[f"captions_{language}"][:], 5, where), 5
    return list(rows[f"caption_{language}"][:]), 1


def _check_multi30k_common(subset: Subset, params: dict[str, Any]) -> tuple[list[str], int | None]:
    where = f"subsets.{subset.name}"
    if len(subset.languages) != 1:
        return [f"{where}.languages: give exactly one caption language"], None
    task = params.get("task")
    if task is not None and task not in (1, 2):
        return [f"{where}.params.task: must be 1 (one caption) or 2 (five captions), got {task!r}"], None
    language = subset.languages[0]
    task = multi30k_task(params, language)
    allowed = TASK2_LANGUAGES if task == 2 else TASK1_LANGUAGES
    if language not in allowed:
        return [f"{where}.languages: Multi30k task {task} has captions in {', '.join(allowed)}, not {language!r}"], task
    return [], task


def _check_mini(subset: Subset, params: dict[str, Any]) -> list[str]:
    problems, _ = _check_multi30k_common(subset, params)
    if subset.split not in MINI_SPLITS:
        problems.append(f"subsets.{subset.name}.split: multi30k-mini-v1 splits are {', '.join(MINI_SPLITS)}")
    return problems


def _load_mini(card: TaskCard, subset: Subset, params: dict[str, Any], data_dir: Path) -> RetrievalData:
    from ..data.io import feature_array
    from ..data.multi30k_mini import MINI_PROTOCOL, load_multi30k_mini

    language = subset.languages[0]
    task = multi30k_task(params, language)
    rows = load_multi30k_mini(data_dir)[subset.split]
    captions, k = _multi30k_captions(rows, language, task, f"{MINI_PROTOCOL} {subset.split}")
    features = np.asarray(feature_array(rows), dtype=np.float32)
    return RetrievalData(features, captions, k, MULTI30K_FEATURE_SOURCE, language, len(rows),
                         details={"data": MINI_PROTOCOL, "official": False, "multi30k_task": task})


def _check_multi30k(subset: Subset, params: dict[str, Any]) -> list[str]:
    from ..data.multi30k import TASK1_SPLITS

    problems, task = _check_multi30k_common(subset, params)
    where = f"subsets.{subset.name}.split"
    if subset.split not in TASK1_SPLITS:
        problems.append(f"{where}: use a Multi30k task-1 image split ({', '.join(TASK1_SPLITS)})")
    elif task == 2 and subset.split not in _task1_to_task2():
        problems.append(f"{where}: task 2 has no captions for the images of {subset.split!r}")
    return problems


def _load_multi30k(card: TaskCard, subset: Subset, params: dict[str, Any], data_dir: Path) -> RetrievalData:
    from ..data.io import feature_array
    from ..data.multi30k import HOW_TO_GET, load_multi30k

    language = subset.languages[0]
    task = multi30k_task(params, language)
    split = subset.split if task == 1 else _task1_to_task2()[subset.split]
    rows = load_multi30k(data_dir, task=task, split=split, languages=[language], features=True)
    if "features" not in rows.column_names:
        feature_file = data_dir / "multi30k" / "features" / f"{subset.split}-resnet50-avgpool.npy"
        raise DataError(f"{feature_file}: not found; retrieval needs the features of {subset.split}. {HOW_TO_GET}")
    captions, k = _multi30k_captions(rows, language, task, f"multi30k task {task} {split}")
    features = np.asarray(feature_array(rows), dtype=np.float32)
    return RetrievalData(features, captions, k, MULTI30K_FEATURE_SOURCE, language, len(rows),
                         details={"data": "multi30k", "official": True, "multi30k_task": task, "multi30k_split": split})


# -- VSE++/SCAN precomputed folders and Karpathy JSON ----------------------------------------------
PROTOCOLS = ("all", "1k", "5k")


def _files_named(subset: Subset, predicate: Callable[[str], bool]) -> list[DataFile]:
    return [f for f in subset.files if predicate(Path(f.path).name)]


def _check_feature_protocol(subset: Subset, params: dict[str, Any]) -> list[str]:
    where = f"subsets.{subset.name}"
    problems = []
    if len(subset.languages) != 1:
        problems.append(f"{where}.languages: give exactly one caption language")
    feature_source = params.get("feature_source")
    if not isinstance(feature_source, str) or not feature_source.strip():
        problems.append(f"{where}.params.feature_source: name the feature space of the image features "
                        "(e.g. 'coco/resnet152-avgpool'); models declare which spaces they embed")
    return problems


def _check_precomputed(subset: Subset, params: dict[str, Any]) -> list[str]:
    problems = _check_feature_protocol(subset, params)
    wanted = (f"{subset.split}_caps.txt", f"{subset.split}_ims.npy")
    found = [_files_named(subset, lambda name, w=w: name == w) for w in wanted]
    for name, files in zip(wanted, found):
        if len(files) != 1:
            problems.append(f"subsets.{subset.name}.files: list {name} exactly once (VSE++/SCAN layout)")
    if all(len(files) == 1 for files in found):
        caps, ims = found[0][0], found[1][0]
        if caps.base != ims.base or Path(caps.path).parent != Path(ims.path).parent:
            problems.append(f"subsets.{subset.name}.files: {wanted[0]} and {wanted[1]} must be in one folder")
    return problems


def _protocol(params: dict[str, Any]) -> str:
    return params.get("protocol", "all")


def _finish_protocol(data: RetrievalData, protocol: str, path: Path) -> RetrievalData:
    if protocol in ("1k", "5k") and data.n_images != COCO_1K_IMAGES:
        raise DataError(f"{path}: the {protocol.upper()} protocol needs the {COCO_1K_IMAGES} test images, "
                        f"found {data.n_images}")
    if protocol == "1k":
        data.folds = 5
    data.details["protocol"] = protocol
    return data


def _load_precomputed(card: TaskCard, subset: Subset, params: dict[str, Any], data_dir: Path) -> RetrievalData:
    from ..data.io import feature_array
    from ..data.retrieval_sets import CAPTIONS_PER_IMAGE, load_precomputed

    (caps,) = _files_named(subset, lambda name: name == f"{subset.split}_caps.txt")
    caps_path = caps.resolve(card.directory, data_dir)
    rows = load_precomputed(caps_path.parent, subset.split)
    captions = _flatten(rows["captions"][:], CAPTIONS_PER_IMAGE, str(caps_path))
    features = np.asarray(feature_array(rows), dtype=np.float32)
    data = RetrievalData(features, captions, CAPTIONS_PER_IMAGE, params["feature_source"], subset.languages[0],
                         len(rows), details={"data": "vse-precomputed"})
    return _finish_protocol(data, _protocol(params), caps_path)


def _check_coco(subset: Subset, params: dict[str, Any]) -> list[str]:
    from ..data.retrieval_sets import KARPATHY_SPLITS

    problems = _check_feature_protocol(subset, params)
    where = f"subsets.{subset.name}"
    if len(_files_named(subset, lambda name: name.endswith(".json"))) != 1:
        problems.append(f"{where}.files: list exactly one Karpathy split .json")
    if len(_files_named(subset, lambda name: name.endswith((".npy", ".npz")))) != 1:
        problems.append(f"{where}.files: list exactly one image feature file (.npy or .npz)")
    if subset.split not in KARPATHY_SPLITS:
        problems.append(f"{where}.split: Karpathy splits are {', '.join(KARPATHY_SPLITS)}")
    return problems


def _load_coco(card: TaskCard, subset: Subset, params: dict[str, Any], data_dir: Path) -> RetrievalData:
    from ..data.io import feature_array
    from ..data.retrieval_sets import CAPTIONS_PER_IMAGE, load_coco_karpathy

    (json_file,) = _files_named(subset, lambda name: name.endswith(".json"))
    (feature_file,) = _files_named(subset, lambda name: name.endswith((".npy", ".npz")))
    json_path = json_file.resolve(card.directory, data_dir)
    rows = load_coco_karpathy(json_path, feature_file.resolve(card.directory, data_dir), subset.split)
    captions = _flatten(rows["captions"][:], CAPTIONS_PER_IMAGE, str(json_path))
    features = np.asarray(feature_array(rows), dtype=np.float32)
    data = RetrievalData(features, captions, CAPTIONS_PER_IMAGE, params["feature_source"], subset.languages[0],
                         len(rows), details={"data": "karpathy-json"})
    return _finish_protocol(data, _protocol(params), json_path)


SOURCES: dict[str, Source] = {
    "emoji": Source("emoji", {"style": ("noto", "emojione", "symbola")}, _load_emoji, _check_emoji),
    "multi30k-mini": Source("multi30k-mini", {"task": (1, 2)}, _load_mini, _check_mini),
    "multi30k": Source("multi30k", {"task": (1, 2)}, _load_multi30k, _check_multi30k),
    "precomputed": Source("precomputed", {"protocol": PROTOCOLS, "feature_source": ()},
                          _load_precomputed, _check_precomputed),
    "coco": Source("coco", {"protocol": PROTOCOLS, "feature_source": ()}, _load_coco, _check_coco),
}
