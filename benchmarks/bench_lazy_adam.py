"""``lazy-adam`` on ``imagevec-multi``'s network: a training step (ms) with the model's sparse word and
context tables and ``optimizer = "lazy-adam"`` (``mmbench.train.lazy_adam``), against the same network
with dense tables and torch's fused Adam (what the trainer builds for ``optimizer = "adam"``), both
through ``Trainer.fit`` on the same batches, in the same run; and each one's peak memory.

Workload: ``plugins/imagevec_multi_net.py``'s ``MultiNet`` (a ``lang:word`` ``EmbeddingBag`` table, a
context table of the same size, one image MLP per feature space, free vectors for the Multi30k train
images) and its summed loss ``MultiLoss`` (image-text softmax + skip-gram + translation softmax, the
default ``ImageVecMultiConfig``: 100-d, MLP hidden 200, temperature 0.1, lr 0.01, no clipping) at the
model's real size, 333,101 rows x 100 per table (``--quick``: 50,000 rows). Synthetic data of the real
batches' shapes (the tokens are table rows drawn Zipf-like, so a step touches a realistic few thousand
rows): batches of 1,000 image-text pairs drawn from the three sources in their real proportions (emoji
65 %: 1.7 tokens, 1,280-d features of 3,079 images; Multi30k 33 %: 11 tokens, 29,000 free image vectors;
multi30k-mini 2 %: 11 tokens, 2,048-d features of 700 photos), and per step, drawn by the plugin's own
``ContextCorpus`` and ``TranslationGroups``, 4,096 skip-gram centres with 5 negatives (window 5) and 500
translation pairs (11 tokens).

The dense contender is ``MultiNet`` with ``sparse = False`` set on its three tables (the plugin's network
hard-codes ``sparse=True``); the skip-gram centre lookup in ``MultiLoss.context_loss`` asks for a sparse
gradient itself (``F.embedding(..., sparse=True)``), which autograd adds into the table's dense gradient,
so fused Adam sees dense gradients only.

Rows: ``dense_adam_vs_lazy_adam`` (ms a step; ratio = dense / lazy: how many times longer a dense step
takes), the same in CPU time, ``lazy_adam_vs_forward_backward`` (a lazy step over forward + backward of
the sparse network alone), and ``peak_rss`` (MiB the process's resident set grew to during each run
above what it held before; ratio dense / lazy; Linux only). On CUDA the step rows again (skipped with the
reason when there is no GPU). The trainer writes no checkpoint here (no run directory), and its timed
steps follow 6 warm-up steps (lazy-adam's moments are faulted in over its first steps, see ``WARMUP``).

usage: python benchmarks/bench_lazy_adam.py [--rows 333101] [--steps 6] [--repeats 3] [--device cpu|cuda|both]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness
import numpy as np
import torch
import training_throughput
from mmbench_plugins.imagevec_multi import ImageVecMultiConfig
from mmbench_plugins.imagevec_multi_net import ImageTextBatches, MultiLoss, MultiNet

from mmbench.train import Objective, Trainer, seed_everything
from mmbench.train.corpora import TrainingPairs
from mmbench.train.streams import ContextCorpus, TranslationGroups

REAL_ROWS, QUICK_ROWS = 333_101, 50_000  # imagevec-multi's vocabulary (docs/imagevec-multi.md)
# Per image source: share of an epoch's pairs (1,149,199 + 5 x 116,000 + 5 x 8,392 of 1,771,159), mean tokens
# of a text, feature dim (0: a free vector per image), images
SOURCES = {"emoji": (0.649, 1.7, 1280, 3079), "multi30k": (0.327, 11.2, 0, 29_000),
           "multi30k-mini": (0.024, 11.2, 2048, 700)}
# lazy-adam's moments start as untouched zero pages that its first steps fault in a few rows at a time
# (dense Adam writes them all in its first step): at 333k rows a lazy step took 575, 242, 207, then
# 140-180 ms of CPU, so the timed steps start later than training_throughput's 3 warm-up steps
WARMUP = 6
CAPTION_TOKENS = 11.2  # Multi30k task-1 train captions, en/de/fr/cs (translation groups, context sentences)


class RowVocabulary:
    """The synthetic texts' tokens are table rows already: ``rows`` is the identity."""

    def rows(self, language: str, tokens, bucket: bool = False) -> list[int]:
        return list(tokens)


@dataclass
class Data:
    n_rows: int
    images: list[dict]  # MultiNet's image entries
    batches: ImageTextBatches
    corpus: ContextCorpus
    groups: TranslationGroups
    group_texts: list[list[int]]


def synthetic(n_rows: int, *, pairs: int = 20_000, sentences: int = 20_000, groups: int = 3_000,
              seed: int = 0) -> Data:
    """Texts of Zipf-distributed rows (s = 1, in a random row order) in the real batches' shapes. The pools
    are smaller than the model's (1.77M pairs, 123k sentences, 30k translation groups): a step's batches
    are what costs, not the size of what they are drawn from."""
    rng = np.random.default_rng(seed)
    rank = 1.0 / np.arange(1, n_rows + 1)
    order = rng.permutation(n_rows)

    def texts(count: int, mean_tokens: float) -> list[list[int]]:
        lengths = 1 + rng.poisson(mean_tokens - 1, count)
        flat = order[rng.choice(n_rows, int(lengths.sum()), p=rank / rank.sum())]
        return [row.tolist() for row in np.split(flat, np.cumsum(lengths)[:-1])]

    sources = []
    for share, tokens, feature_dim, n_images in SOURCES.values():
        n = max(1, round(share * pairs))
        queries = texts(n, tokens)
        sources.append(TrainingPairs(["xx"] * n, queries, [str(i) for i in range(n_images)],
                                     rng.standard_normal((n_images, feature_dim), dtype=np.float32),
                                     "synthetic", np.arange(n), rng.integers(0, n_images, n)))
    batches = ImageTextBatches(sources, [1] * len(sources), RowVocabulary(), [MultiNet.image_key(s) for s in SOURCES])
    images = [{"source": s, "feature_source": "synthetic", "feature_dim": d, "n_images": k}
              for s, (_, _, d, k) in SOURCES.items()]
    group_texts = texts(4 * groups, CAPTION_TOKENS)  # a Multi30k image's en/de/fr/cs captions
    members = [list(range(4 * g, 4 * g + 4)) for g in range(groups)]
    corpus = ContextCorpus(texts(sentences, CAPTION_TOKENS), n_rows=n_rows, subsample=1e-3)
    return Data(n_rows, images, batches, corpus, TranslationGroups(members), group_texts)


def workload(data: Data, config: ImageVecMultiConfig, dense: bool) -> training_throughput.Workload:
    def build() -> torch.nn.Module:
        seed_everything(0)
        net = MultiNet(data.n_rows, config.dim, config.hidden, data.images, context=True, init_std=config.init_std)
        if dense:
            for module in net.modules():
                if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
                    module.sparse = False
        return net

    def objectives(device: torch.device) -> list[Objective]:  # as imagevec_multi_net.train declares it
        return [Objective("multitask", MultiLoss(config, data.corpus, data.groups, data.group_texts, seed=0))]

    train = config.train.replace(seed=0, optimizer="adam" if dense else "lazy-adam")
    return training_throughput.Workload(build, objectives, data.batches.data, data.batches, train, "ms",
                                        f"{data.n_rows:,} rows x {config.dim} x 2 tables, batch {train.batch_size} "
                                        f"+ {config.context_batch} centres + {config.translation_batch} translations")


def trainer_steps(work: training_throughput.Workload, device: str, steps: int) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds of each timed ``Trainer.fit`` step (as ``training_throughput.trainer_steps``,
    without the run directory, so no checkpoint of the tables is written at the end), after ``WARMUP``
    steps."""
    warmup = WARMUP
    train = work.train.replace(max_steps=warmup + steps + 1, device=device, progress=False, log_every=1,
                               val_every=None, checkpoint_every=None)
    clock = training_throughput.StepClock(work.collate)
    Trainer(work.build(), work.objectives(torch.device(device)), work.data, train, collate=clock).fit()
    return clock.steps(warmup, steps)


class PeakRSS:
    """How far the resident set grew above its level at the start of a call (``VmHWM`` reset through
    ``/proc/self/clear_refs``); ``None`` where that is not available."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}

    def measure(self, name: str, function: Callable[[], float]) -> float:
        gc.collect()
        _malloc_trim()
        start = _reset_peak()
        result = function()
        peak = _status_kib("VmHWM")
        if start is not None and peak is not None:
            self.best[name] = min(self.best.get(name, float("inf")), (peak - start) / 1024)
        return result


def _reset_peak() -> int | None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _malloc_trim() -> None:
    """Give freed heap memory back (glibc), so one contender's leftovers do not hide the next one's growth."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def compare(data: Data, config: ImageVecMultiConfig, device: str, steps: int, repeats: int,
            details: dict) -> list[dict]:
    lazy, dense = workload(data, config, dense=False), workload(data, config, dense=True)
    rss, cpu = PeakRSS(), {}

    def timed(name: str, run: Callable[[], tuple[list[float], ...]]) -> float:
        def one() -> float:
            wall, cpu_seconds = run()[:2]
            cpu[name] = min(cpu.get(name, float("inf")), harness.median_step(cpu_seconds))
            return harness.median_step(wall)
        return rss.measure(name, one)

    # forward + backward of the sparse network (the optimizer is built by the helper but never stepped)
    bare = training_throughput.Workload(lazy.build, lazy.objectives, lazy.data, lazy.collate,
                                        lazy.train.replace(optimizer="adam"), lazy.unit, lazy.what)
    contenders = {
        "forward_backward": lambda: timed("forward_backward", lambda: training_throughput.bare_steps(
            bare, torch.device(device), steps, "off", False, optimize=False)),
        "lazy_adam": lambda: timed("lazy_adam", lambda: trainer_steps(lazy, device, steps)),
        "dense_fused_adam": lambda: timed("dense_fused_adam", lambda: trainer_steps(dense, device, steps)),
    }
    best = harness.interleaved_best(contenders, repeats)
    ms = {name: 1e3 * seconds for name, seconds in best.items()}
    what = f"{device}, {lazy.what}"
    rows = [harness.row(f"{device}/dense_adam_vs_lazy_adam", ms["dense_fused_adam"], ms["lazy_adam"], "ms",
                        "lazy_adam", f"{what}: Trainer.fit step, dense tables + fused Adam over sparse tables + "
                        f"lazy-adam (ratio: dense / lazy)"),
            harness.row(f"{device}/lazy_adam_vs_forward_backward", ms["lazy_adam"], ms["forward_backward"], "ms",
                        "forward_backward", f"{what}: Trainer.fit step with lazy-adam over forward + backward of "
                        f"the sparse network alone")]
    if device == "cpu":
        rows.insert(1, harness.row("cpu/dense_adam_vs_lazy_adam_cpu_time", 1e3 * cpu["dense_fused_adam"],
                                   1e3 * cpu["lazy_adam"], "CPU ms", "lazy_adam (CPU time)",
                                   f"{what}: as above, in this process's CPU time (one torch thread)"))
        if {"dense_fused_adam", "lazy_adam"} <= set(rss.best):
            rows.append(harness.row("cpu/peak_rss", rss.best["dense_fused_adam"], rss.best["lazy_adam"], "MiB",
                                    "lazy_adam", f"{what}: growth of the peak resident set during one Trainer.fit "
                                    f"run (network, gradients, optimizer state) above the level before it"))
        else:
            rows.append(harness.skipped("cpu/peak_rss", "no /proc/self/clear_refs on this system"))
    details[device] = {"step_ms": {k: round(v, 2) for k, v in ms.items()},
                       "cpu_step_ms": {k: round(1e3 * v, 2) for k, v in cpu.items()},
                       "peak_rss_growth_mib": {k: round(v, 1) for k, v in rss.best.items()}}
    return rows


def bench(n_rows: int, steps: int, repeats: int, devices: tuple[str, ...]) -> dict:
    config = ImageVecMultiConfig()
    data = synthetic(n_rows)
    details: dict = {"rows": n_rows, "dim": config.dim, "steps": steps, "repeats": repeats,
                     "threads": torch.get_num_threads(), "batch": config.train.batch_size,
                     "context_batch": config.context_batch, "negatives": config.negatives,
                     "translation_batch": config.translation_batch}
    rows: list[dict] = []
    for device in devices:
        name = f"{device}/dense_adam_vs_lazy_adam"
        if device == "cuda" and not torch.cuda.is_available():
            rows.append(harness.skipped(name, "no CUDA device on this machine"))
            continue
        rows += harness.attempt(name, lambda device=device: compare(data, config, device, steps, repeats, details))
    return {"rows": rows, "details": details}


def run(quick: bool) -> dict:
    """The real table size on CPU (and CUDA when present); quick: 50,000 rows, fewer steps and repeats."""
    if quick:
        return bench(QUICK_ROWS, 3, 2, ("cpu", "cuda"))
    return bench(REAL_ROWS, 6, 3, ("cpu", "cuda"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=REAL_ROWS, help="rows of each table")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    args = parser.parse_args()
    devices = ("cpu", "cuda") if args.device == "both" else (args.device,)
    result = bench(args.rows, args.steps, args.repeats, devices)
    print(json.dumps({"machine": harness.machine_facts(), **result}, indent=2))


if __name__ == "__main__":
    main()
