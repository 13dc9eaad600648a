"""Time mmbench's retrieval and CSLS metrics against baselines measured in the same run.

* Retrieval (VSE++ protocol): ``retrieval_scores`` (fused tiles) on N images x 5N captions, against
  (a) the bare similarity product ``images @ captions.T`` (what any implementation must at least
  compute), in 1024-row blocks into one buffer and as one allocated result, (b) the per-direction path
  (one product per direction: the implementation before the fused scorer), with the number of ranks
  that differ between the two, and (c) VSE++'s per-query loop (``argsort`` per query), timed on a
  subsample and extrapolated. The contenders run interleaved, best of ``--repeat``.
* BLI with CSLS: ``bli_scores`` on S x T vocabularies with Q queries (full-vocabulary neighbourhoods),
  against the bare chunked S x T product.

Run ``python benchmarks/bench_metrics.py`` (5K x 25K, d=1024; 200k x 200k, d=300: long on a CPU) or
``--quick``; sizes can be overridden. Prints seconds and ratios; asserts nothing.
On a shared machine, use ``--repeat 5`` or more: best-of-N filters out a busy neighbour.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import harness
import numpy as np
import torch

from mmbench.metrics import bli_scores, retrieval_ranks, retrieval_scores
from mmbench.metrics.retrieval import _reference_ranks

REPEAT = 1


def timed(function, *args, **kwargs) -> tuple[float, object]:
    """Best wall-clock time of ``REPEAT`` calls, and the last result."""
    best = float("inf")
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def bare_product(rows: torch.Tensor, columns: torch.Tensor, block: int) -> None:
    """rows @ columns.T in blocks of ``block`` rows, written into one reused buffer."""
    buffer = torch.empty((block, columns.shape[0]), dtype=rows.dtype)
    for start in range(0, rows.shape[0], block):
        chunk = rows[start : start + block]
        torch.matmul(chunk, columns.T, out=buffer[: chunk.shape[0]])


def vsepp_loop_seconds_per_query(
    images: np.ndarray, captions: np.ndarray, k: int, n_sample: int
) -> tuple[float, float]:
    """VSE++ ``i2t``/``t2i`` inner loops (numpy dot + argsort per query) on ``n_sample`` queries each."""
    start = time.perf_counter()
    for index in range(n_sample):
        order = np.argsort(captions @ images[index])[::-1]
        min(np.where(order == j)[0][0] for j in range(k * index, k * index + k))
    i2t = (time.perf_counter() - start) / n_sample
    start = time.perf_counter()
    for index in range(n_sample):
        order = np.argsort(images @ captions[index])[::-1]
        np.where(order == index // k)[0][0]
    t2i = (time.perf_counter() - start) / n_sample
    return i2t, t2i


def interleaved(functions: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall-clock seconds of each function over ``repeat`` rounds, run in turn within each round
    (so a noisy neighbour slows every contender alike)."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_retrieval(n_images: int, dim: int, block: int, n_sample: int, blocks: list[int]) -> dict:
    k = 5
    rng = np.random.default_rng(0)
    images = rng.normal(size=(n_images, dim)).astype(np.float32)
    captions = (images.repeat(k, axis=0) + rng.normal(scale=0.3 * dim**0.5, size=(n_images * k, dim))).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    captions /= np.linalg.norm(captions, axis=1, keepdims=True)
    image_t, caption_t = torch.from_numpy(images), torch.from_numpy(captions)

    contenders: dict[str, Callable[[], object]] = {
        "bare": lambda: bare_product(image_t, caption_t, 1024),
        "bare_alloc": lambda: image_t @ caption_t.T,
    }
    for size in blocks:
        contenders[f"fused{size}"] = lambda size=size: retrieval_scores(image_t, caption_t, block_size=size)
    contenders["per_direction"] = lambda: _reference_ranks(image_t, caption_t, block_size=block)
    best = interleaved(contenders, REPEAT)
    fused = retrieval_ranks(image_t, caption_t, block_size=block)
    reference = _reference_ranks(image_t, caption_t, block_size=block)
    differing = int((fused[0] != reference[0]).sum() + (fused[1] != reference[1]).sum())
    scores = retrieval_scores(image_t, caption_t, block_size=block)
    i2t_q, t2i_q = vsepp_loop_seconds_per_query(images, captions, k, n_sample)
    loop_s = i2t_q * n_images + t2i_q * n_images * k
    bare_s = best["bare"]
    print(f"retrieval {n_images} images x {n_images * k} captions, d={dim}, float32, cosine, pessimistic ties")
    print(f"  bare product images @ captions.T, 1024-row blocks into one buffer {bare_s:8.3f} s   ratio 1.00")
    print(f"  bare product images @ captions.T, one allocated result       {best['bare_alloc']:8.3f} s   ratio {best['bare_alloc'] / bare_s:.2f}")
    for size in blocks:
        seconds = best[f"fused{size}"]
        print(f"  retrieval_scores, fused tiles, block_size={size:<5}              {seconds:8.3f} s   ratio {seconds / bare_s:.2f}")
    print(f"  per-direction path (one product per direction), block={block:<5}   {best['per_direction']:8.3f} s   ratio {best['per_direction'] / bare_s:.2f}")
    print(f"  ranks differing between fused and per-direction paths: {differing} of {n_images * (k + 1)}   rsum={scores['rsum']:.1f}")
    print(
        f"  VSE++ per-query loop, extrapolated from {n_sample} i2t + {n_sample} t2i queries: {loop_s:8.1f} s"
        f"   speed-up of fused = {loop_s / best[f'fused{block}'] if f'fused{block}' in best else float('nan'):.1f}x"
    )
    return {"images": n_images, "dim": dim, "block": block, "seconds": best, "vsepp_loop_s": loop_s,
            "differing_ranks": differing, "ranks": n_images * (k + 1), "rsum": scores["rsum"]}


def csls_loop_seconds(source: np.ndarray, target: np.ndarray, k: int, n_sample: int) -> tuple[float, float]:
    """A straightforward CSLS: one target word at a time for r_tgt (its k best source cosines), then one
    query at a time (r_src, cosines to every target, CSLS scores, top 10); partial sorts throughout. Seconds per target / query."""
    start = time.perf_counter()
    for index in range(n_sample):
        np.partition(source @ target[index], -k)[-k:].mean()
    per_target = (time.perf_counter() - start) / n_sample
    r_target = np.zeros(len(target), dtype=np.float32)
    start = time.perf_counter()
    for index in range(n_sample):
        cosines = target @ source[index]
        r_source = np.partition(cosines, -k)[-k:].mean()
        np.argpartition(-(2 * cosines - r_source - r_target), 10)[:10]
    per_query = (time.perf_counter() - start) / n_sample
    return per_target, per_query


def bench_csls(vocabulary: int, dim: int, n_queries: int, chunk: int, n_sample: int = 50) -> dict:
    rng = np.random.default_rng(1)
    source = torch.from_numpy(rng.normal(size=(vocabulary, dim)).astype(np.float32))
    target = torch.from_numpy(rng.normal(size=(vocabulary, dim)).astype(np.float32))
    target[:n_queries] = source[:n_queries] + 3.0 * target[:n_queries]  # a weak signal for the queries
    queries = {i: {i} for i in range(n_queries)}

    metric_s, scores = timed(bli_scores, source, target, queries, method="csls", chunk_size=chunk)
    step = max(1, chunk * chunk // vocabulary)
    bare_s, _ = timed(bare_product, target, source, step)
    print(f"CSLS {vocabulary} x {vocabulary} vocabularies, d={dim}, {n_queries} queries, chunk={chunk}, float32")
    print(f"  bli_scores(method='csls')               {metric_s:8.2f} s   p1={scores['p1']:.1f}")
    print(f"  bare chunked product target x source    {bare_s:8.2f} s   ratio metric/bare = {metric_s / bare_s:.2f}")
    unit_source = (source / source.norm(dim=1, keepdim=True)).numpy()
    unit_target = (target / target.norm(dim=1, keepdim=True)).numpy()
    per_target, per_query = csls_loop_seconds(unit_source, unit_target, 10, n_sample)
    loop_s = per_target * vocabulary + per_query * n_queries
    print(
        f"  per-word loop, extrapolated from {n_sample} targets + {n_sample} queries: {loop_s:8.1f} s"
        f"   speed-up = {loop_s / metric_s:.1f}x"
    )
    return {"vocabulary": vocabulary, "dim": dim, "queries": n_queries, "metric_s": metric_s, "bare_s": bare_s,
            "loop_s": loop_s, "p1": scores["p1"]}


def run(quick: bool) -> dict:
    """Rows for ``run_all.py``: retrieval 1K x 5K (d = 256) quick, else 5K x 25K (d = 1024); CSLS 10k x 10k
    quick, else 50k x 50k (the 200k default of the script takes minutes on a CPU); best of 3 (1 for the
    full CSLS, whose single run takes long enough to be steady)."""
    global REPEAT
    REPEAT = 3
    retrieval_scores(torch.randn(20, 8), torch.randn(100, 8))  # lazy initialisation, as main() does
    bli_scores(torch.randn(50, 8), torch.randn(50, 8), {0: {0}})
    images, dim = (1000, 256) if quick else (5000, 1024)
    found = bench_retrieval(images, dim, 1024, 10, [1024])
    seconds, bare = found["seconds"], found["seconds"]["bare"]
    what = f"{images} images x {5 * images} captions, d={dim}"
    rows = [harness.row("retrieval/fused", seconds["fused1024"], bare, "s", "bare product (blocks, one buffer)",
                        f"{what}: retrieval_scores; ranks differing from the per-direction path: "
                        f"{found['differing_ranks']} of {found['ranks']}"),
            harness.row("retrieval/per_direction", seconds["per_direction"], bare, "s",
                        "bare product (blocks, one buffer)", f"{what}: one product per direction (before)"),
            harness.row("retrieval/vsepp_loop", found["vsepp_loop_s"], bare, "s", "bare product (blocks, one buffer)",
                        f"{what}: VSE++ per-query argsort loop, extrapolated from 10 + 10 queries")]
    vocabulary = 10_000 if quick else 50_000
    REPEAT = 3 if quick else 1
    csls = bench_csls(vocabulary, 300, 1500, 4096, 10)
    what = f"{vocabulary} x {vocabulary} vocabularies, d=300, 1500 queries"
    rows += [harness.row("csls/bli_scores", csls["metric_s"], csls["bare_s"], "s", "bare chunked product",
                         f"{what}: bli_scores(method='csls')"),
             harness.row("csls/per_word_loop", csls["loop_s"], csls["bare_s"], "s", "bare chunked product",
                         f"{what}: per-word loop, extrapolated from 10 + 10 words")]
    found["seconds"] = {name: round(s, 4) for name, s in seconds.items()}
    return {"rows": rows, "details": {"retrieval": found, "csls": csls, "threads": torch.get_num_threads()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (1K x 5K retrieval, 20k CSLS)")
    parser.add_argument("--images", type=int, help="number of images (captions = 5x)")
    parser.add_argument("--image-dim", type=int)
    parser.add_argument("--vocab", type=int, help="source and target vocabulary size")
    parser.add_argument("--vocab-dim", type=int)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--block", type=int, default=1024, help="retrieval block_size (images per tile)")
    parser.add_argument("--blocks", default="", help="extra comma-separated retrieval block sizes to time")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--loop-sample", type=int, default=50, help="queries timed for the per-query loop")
    parser.add_argument("--repeat", type=int, help="report the best of this many runs (default 3 quick, 1 full)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-csls", action="store_true")
    args = parser.parse_args()
    images = args.images or (1000 if args.quick else 5000)
    vocabulary = args.vocab or (20000 if args.quick else 200000)
    global REPEAT
    REPEAT = args.repeat or (3 if args.quick else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {REPEAT} run(s)")
    # Warm-up: first calls pay for lazy initialisation (thread pools, allocator).
    retrieval_scores(torch.randn(20, 8), torch.randn(100, 8))
    bli_scores(torch.randn(50, 8), torch.randn(50, 8), {0: {0}})
    if not args.skip_retrieval:
        blocks = sorted({args.block, *(int(b) for b in args.blocks.split(",") if b)})
        bench_retrieval(images, args.image_dim or (256 if args.quick else 1024), args.block, args.loop_sample, blocks)
    if not args.skip_csls:
        bench_csls(vocabulary, args.vocab_dim or 300, min(args.queries, vocabulary), args.chunk, args.loop_sample)


if __name__ == "__main__":
    main()
