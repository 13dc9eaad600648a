"""How much CLDR structure the packaged emoji features carry, and what float16 storage costs.

    python benchmarks/emoji_knn_structure.py            # packaged artifact only
    python benchmarks/emoji_knn_structure.py --encode   # also re-encode in float32 (needs build deps, ~3 min)

Reports, for k = 5 cosine nearest neighbours: the share of neighbours in the image's CLDR subgroup
(Noto only, all styles, and across styles), next to chance (the same share for a random image); and,
with ``--encode``, the overlap of 5-NN sets between float32 features and their float16 (shipped) and
int8 (per-dimension linear) versions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def knn(features: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k most cosine-similar rows (self excluded); ``candidates`` masks allowed pairs."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    if candidates is not None:
        sims = np.where(candidates, sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def agreement(labels: np.ndarray, neighbours: np.ndarray) -> float:
    return float((labels[neighbours] == labels[:, None]).mean())


def chance(labels: np.ndarray, candidates: np.ndarray | None = None) -> float:
    same = labels[:, None] == labels[None, :]
    allowed = np.ones_like(same) if candidates is None else candidates.copy()
    np.fill_diagonal(allowed, False)
    return float(((same & allowed).sum(1) / allowed.sum(1)).mean())


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--encode", action="store_true", help="re-encode images in float32 (build deps needed)")
    args = parser.parse_args()

    from mmbench.data.emoji import load_emoji

    start = time.perf_counter()
    ds = load_emoji()
    features = ds.features_matrix()
    print(f"load_emoji + features_matrix: {time.perf_counter() - start:.2f} s, {features.shape}")
    subgroup = np.asarray(ds.images["subgroup"])
    style = np.asarray(ds.images["style"])
    concept = np.asarray(ds.images["concept"])

    other_concept = concept[:, None] != concept[None, :]
    n_all = knn(features, args.k, other_concept)
    print(f"all styles*    : {agreement(subgroup, n_all):.3f}  (chance {chance(subgroup, other_concept):.3f})"
          "  *same-concept images excluded")
    for name in ds.manifest["styles"]:
        rows = style == name
        n_style = knn(features[rows], args.k)
        print(f"{name:<15}: {agreement(subgroup[rows], n_style):.3f}  (chance {chance(subgroup[rows]):.3f})")
    # How often the nearest image of another style is the same concept (cross-style retrieval P@1).
    for query in ds.manifest["styles"]:
        for target in ds.manifest["styles"]:
            if query == target:
                continue
            shared = np.intersect1d(concept[style == query], concept[style == target])
            q = features[(style == query) & np.isin(concept, shared)]
            t = features[(style == target) & np.isin(concept, shared)]
            qn = q / np.linalg.norm(q, axis=1, keepdims=True)
            tn = t / np.linalg.norm(t, axis=1, keepdims=True)
            hits = np.argmax(qn @ tn.T, axis=1) == np.arange(len(shared))
            print(f"P@1 {query}->{target}: {hits.mean():.3f} over {len(shared)} concepts (chance {1 / len(shared):.4f})")

    if args.encode:
        from mmbench.data.emoji import build, encode

        start = time.perf_counter()
        plan = build.plan_emoji()
        exact = encode.encode_images([build.render(plan, spec) for spec in plan.images])
        print(f"re-encoded {len(exact)} images in {time.perf_counter() - start:.0f} s")
        print(f"shipped float16 == float16(re-encoded float32): {np.array_equal(features, exact.astype(np.float16).astype(np.float32))}")
        reference = knn(exact, args.k)
        low, high = exact.min(0), exact.max(0)
        int8 = np.round((exact - low) / np.maximum(high - low, 1e-12) * 255)
        int8 = int8 * (high - low) / 255 + low
        for name, approx in [("float16", exact.astype(np.float16).astype(np.float32)), ("int8", int8)]:
            print(f"5-NN overlap float32 vs {name}: {overlap(reference, knn(approx, args.k)):.4f}")


if __name__ == "__main__":
    main()
