"""Trainer throughput on an ImageVec-like workload, and how much of it the trainer itself costs.

Workload: bag-of-words ``EmbeddingBag`` query encoder (vocab 100k, dim 300, mean of 12 tokens), image MLP
1280 -> 300 -> 300, in-batch softmax over cosine, global batch 1000, Adam, gradient clipping at 2.0.
Synthetic inputs with the shapes of real ones (the arithmetic does not depend on the values).

Reported, all measured in this run on this machine: pairs/s from the median step time after 3 warm-up
steps, best of interleaved repeats; every variant reads its loss back each step (the trainer logs every step).
- ``trainer``: pairs/s through ``Trainer.fit`` (no checkpoints);
- ``bare_fused``: a hand-written loop over the same module doing the same work (forward, backward, clip,
  fused Adam step); ``trainer_over_bare`` = trainer / bare_fused is the trainer's own overhead;
- ``bare_default``: the same loop with ``torch.optim.Adam``'s defaults (what a plugin would write by hand;
  the trainer picks the fused kernel);
- ``forward_backward``: forward + backward alone;
- from torch.profiler over trainer steps: the share of time in the model's matrix products (mm, addmm,
  embedding_bag and their backward kernels), and in each trainer phase (``mmbench.train.*`` ranges:
  data, forward, backward, clip, optimizer); ``unattributed`` is the trainer's bookkeeping between them.

ImageVec (``--imagevec``, CPU): the real ``ImageVecNet`` at the emoji all-language size (266k words +
10k buckets, 100-d; image MLP 1280 -> 200 -> 100; batch 1000, ~6 tokens a query, synthetic inputs) and its
training-only gradient hook, one step as the trainer runs it for ImageVec (forward, backward, fused Adam,
no clipping), against a bare forward + backward of the same network in the same run:
- ``imagevec_step``: the step with ``ReusedDenseGrad`` (zeroes only the rows the previous step touched);
- ``imagevec_step_full_zero``: the same with the whole 106 MB buffer zeroed every step (the earlier hook);
- ``imagevec_forward_backward``: forward + backward only (no optimizer).
Weights after the two step variants are checked to be bit-identical (``imagevec_weights_identical``).

On CUDA, ``run()`` (what ``run_all.py`` calls) adds ``cuda/bf16/compile/trainer``: the trainer with
``compile=True`` (bf16) against the uncompiled hand-written loop.

usage: python benchmarks/bench_trainer.py [--steps 6] [--repeats 3] [--device cpu|cuda|both] [--imagevec]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import harness
import torch

from mmbench.train import Objective, TrainConfig, Trainer, read_metrics, seed_everything
from mmbench.train.losses import in_batch_softmax

VOCAB, DIM, IMAGE_DIM, BATCH, TOKENS = 100_000, 300, 1280, 1000, 12
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::_embedding_bag", "aten::_embedding_bag_forward_only",
              "aten::_embedding_bag_dense_backward", "aten::_embedding_bag_backward"}
PHASES = ("data", "forward", "backward", "clip", "optimizer")


class ImageVecLike(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.words = torch.nn.EmbeddingBag(VOCAB, DIM, mode="mean")
        self.image = torch.nn.Sequential(torch.nn.Linear(IMAGE_DIM, DIM), torch.nn.ReLU(), torch.nn.Linear(DIM, DIM))


def loss_fn(model: ImageVecLike, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    tokens, pixels = batch
    return in_batch_softmax(model.words(tokens), model.image(pixels), temperature=0.05)


def make_data(pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ranks = torch.rand(pairs, TOKENS, generator=generator).pow(3) * VOCAB  # Zipf-like: frequent words dominate
    return ranks.long().clamp(max=VOCAB - 1), torch.randn(pairs, IMAGE_DIM, generator=generator)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


WARMUP = 3  # steps before timing: Adam state allocation, allocator and kernel warm-up
COMPILE_WARMUP = 6  # torch.compile traces and compiles during the first steps


def bare_loop(device: torch.device, data, steps: int, optimizer: str) -> list[float]:
    """Per-step seconds of the same module and loss in a hand-written loop; optimizer: none, default, fused."""
    seed_everything(0)
    model = ImageVecLike().to(device)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if optimizer == "fused" else {}))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    order = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(0))
    seconds = []
    for step in range(WARMUP + steps):
        _sync(device)
        started = time.perf_counter()
        rows = order[step * BATCH:(step + 1) * BATCH]
        batch = (data[0][rows].to(device), data[1][rows].to(device))
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model, batch)
        loss.backward()
        if optimizer != "none":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            adam.step()
        float(loss.detach())  # the trainer reads its losses back too (every log_every steps)
        _sync(device)
        seconds.append(time.perf_counter() - started)
    return seconds[WARMUP:]


def trainer_loop(device: torch.device, data, steps: int, compile_: bool = False) -> list[float]:
    """Per-step seconds through Trainer.fit, from its metrics log (log_every=1: a sync per step, as above)."""
    seed_everything(0)
    warmup = COMPILE_WARMUP if compile_ else WARMUP
    config = TrainConfig(max_steps=warmup + steps, batch_size=BATCH, device=str(device), progress=False,
                         log_every=1, compile=compile_)
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(ImageVecLike(), Objective("nce", loss_fn), data, config, run_dir=run_dir).fit()
        clock = [r["time"] for r in read_metrics(f"{run_dir}/metrics.jsonl")]
    return [later - earlier for earlier, later in zip(clock[warmup - 1:], clock[warmup:])]


def profile_shares(device: torch.device, data, steps: int) -> dict[str, float]:
    seed_everything(0)
    config = TrainConfig(max_steps=WARMUP + steps, batch_size=BATCH, device=str(device), progress=False,
                         log_every=steps)
    trainer = Trainer(ImageVecLike(), Objective("nce", loss_fn), data, config)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    started = time.perf_counter()
    with torch.profiler.profile(activities=activities) as profiler:
        trainer.fit()
    wall_us = (time.perf_counter() - started) * 1e6
    events = profiler.key_averages()
    use_cuda = device.type == "cuda"
    kernel_total = sum(e.self_device_time_total if use_cuda else e.self_cpu_time_total for e in events)
    matmul = sum(e.self_device_time_total if use_cuda else e.self_cpu_time_total
                 for e in events if e.key in MATMUL_OPS or "gemm" in e.key.lower())
    shares = {"matmul_share_of_op_time": matmul / kernel_total}
    phase_total = 0.0
    for phase in PHASES:
        spent = sum(e.cpu_time_total for e in events if e.key == f"mmbench.train.{phase}")
        shares[f"{phase}_share"] = spent / wall_us
        phase_total += spent
    shares["unattributed_share"] = 1 - phase_total / wall_us
    return shares


def bench(device: torch.device, steps: int, repeats: int, profile: bool = True) -> dict:
    data = make_data(BATCH * (WARMUP + steps))
    result: dict = {"device": str(device), "threads": torch.get_num_threads(), "batch": BATCH, "steps": steps}
    # Interleaved repeats; each variant's step time is the median of its best repeat, so that a repeat
    # slowed down by other processes on a shared machine does not decide the result.
    runs: dict[str, list[float]] = {"forward_backward": [], "bare_default": [], "bare_fused": [], "trainer": []}
    for _ in range(repeats):
        runs["forward_backward"].append(statistics.median(bare_loop(device, data, steps, "none")))
        runs["bare_default"].append(statistics.median(bare_loop(device, data, steps, "default")))
        runs["bare_fused"].append(statistics.median(bare_loop(device, data, steps, "fused")))
        runs["trainer"].append(statistics.median(trainer_loop(device, data, steps)))
    for name, seconds in runs.items():
        result[f"{name}_pairs_per_s"] = BATCH / min(seconds)
    result["trainer_over_bare"] = result["trainer_pairs_per_s"] / result["bare_fused_pairs_per_s"]
    result["trainer_overhead_ms_per_step"] = 1e3 * (min(runs["trainer"]) - min(runs["bare_fused"]))
    if profile:
        result.update(profile_shares(device, data, steps))
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


IMAGEVEC_ROWS, IMAGEVEC_TOKENS = 266_000 + 10_000, 6


def imagevec_loop(variant: str, steps: int) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Per-step seconds of ImageVec's training step (variant: step, step_full_zero, forward_backward)."""
    from mmbench_plugins import imagevec

    class FullZero(imagevec.ReusedDenseGrad):
        def __call__(self, weight: torch.Tensor) -> None:
            if weight.grad is not None and weight.grad.is_sparse:
                grad = weight.grad.coalesce()
                self.buffer.zero_().index_add_(0, grad.indices()[0], grad.values())
                weight.grad = self.buffer

    seed_everything(0)
    net = imagevec.ImageVecNet(IMAGEVEC_ROWS, 100, 200, feature_dim=IMAGE_DIM)
    net.words.sparse = True
    hook = FullZero if variant == "step_full_zero" else imagevec.ReusedDenseGrad
    net.words.weight.register_post_accumulate_grad_hook(hook(net.words.weight))
    adam = torch.optim.Adam(net.parameters(), lr=0.01, fused=True)
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(WARMUP + steps):
        ranks = torch.rand(BATCH * IMAGEVEC_TOKENS, generator=generator).pow(3) * IMAGEVEC_ROWS
        batch = {"tokens": ranks.long(), "offsets": torch.arange(0, BATCH * IMAGEVEC_TOKENS, IMAGEVEC_TOKENS),
                 "images": torch.randn(BATCH, IMAGE_DIM, generator=generator)}
        started = time.perf_counter()
        net.zero_grad(set_to_none=True)
        loss = imagevec.ranking_loss(net, batch, temperature=0.1, symmetric=False)
        loss.backward()
        if variant != "forward_backward":
            adam.step()
        float(loss.detach())
        seconds.append(time.perf_counter() - started)
    return seconds[WARMUP:], net.state_dict()


def bench_imagevec(steps: int, repeats: int) -> dict:
    runs: dict[str, list[float]] = {"step": [], "step_full_zero": [], "forward_backward": []}
    weights = {}
    for _ in range(repeats):
        for variant in runs:
            seconds, weights[variant] = imagevec_loop(variant, steps)
            runs[variant].append(statistics.median(seconds))
    result: dict = {"device": "cpu", "threads": torch.get_num_threads(), "batch": BATCH, "steps": steps,
                    "rows": IMAGEVEC_ROWS}
    for name, seconds in runs.items():
        result[f"imagevec_{name}_ms"] = 1e3 * min(seconds)
    bare = result["imagevec_forward_backward_ms"]
    result["imagevec_step_over_forward_backward"] = result["imagevec_step_ms"] / bare
    result["imagevec_step_full_zero_over_forward_backward"] = result["imagevec_step_full_zero_ms"] / bare
    result["imagevec_step_over_full_zero"] = result["imagevec_step_ms"] / result["imagevec_step_full_zero_ms"]
    result["imagevec_weights_identical"] = all(
        torch.equal(weights["step"][k], weights["step_full_zero"][k]) for k in weights["step"])
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


def run(quick: bool) -> dict:
    """The rows ``run_all.py`` reports: CPU (and CUDA, bf16, when present) trainer vs the hand-written loop,
    and the ImageVec step vs its bare forward + backward. Quick: 3 timed steps, 2 repeats, no profiler run."""
    steps, repeats = (3, 2) if quick else (6, 3)
    rows: list[dict] = []
    details: dict = {"steps": steps, "repeats": repeats}
    devices = ["cpu", "cuda"]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            rows.append(harness.skipped("cuda/bf16/trainer", "no CUDA device on this machine"))
            continue

        def measure(device=device) -> list[dict]:
            result = bench(torch.device(device), steps, repeats, profile=not quick)
            details[device] = result
            what = f"{device}{', bf16' if device == 'cuda' else ''}, ImageVec-like, batch {BATCH}"
            label = "cuda/bf16" if device == "cuda" else device  # the CUDA rows run under bf16 autocast
            return [harness.row(f"{label}/trainer", result["trainer_pairs_per_s"], result["bare_fused_pairs_per_s"],
                                "pairs/s", "bare_fused", f"{what}: Trainer.fit vs the same step by hand"),
                    harness.row(f"{label}/trainer_vs_forward_backward", result["trainer_pairs_per_s"],
                                result["forward_backward_pairs_per_s"], "pairs/s", "forward_backward",
                                f"{what}: a whole step over forward + backward alone"),
                    harness.row(f"{label}/bare_default_adam", result["bare_default_pairs_per_s"],
                                result["bare_fused_pairs_per_s"], "pairs/s", "bare_fused",
                                f"{what}: torch.optim.Adam defaults vs the fused kernel the trainer picks")]

        rows += harness.attempt(f"{device}/trainer".replace("cuda/", "cuda/bf16/"), measure)
    if torch.cuda.is_available():
        rows += harness.attempt("cuda/bf16/compile/trainer", lambda: _compile_rows(steps, repeats, details))
    else:
        rows.append(harness.skipped("cuda/bf16/compile/trainer", "no CUDA device on this machine"))

    def imagevec_rows() -> list[dict]:
        result = details["imagevec"] = bench_imagevec(steps, repeats)
        what = f"real ImageVecNet, {IMAGEVEC_ROWS:,} rows x 100, batch {BATCH}, fused Adam"
        identical = f"weights bit-identical between the two hooks: {result['imagevec_weights_identical']}"
        return [harness.row("cpu/imagevec_step", result["imagevec_step_ms"], result["imagevec_forward_backward_ms"],
                            "ms/step", "imagevec_forward_backward", f"{what}; ReusedDenseGrad (now); {identical}"),
                harness.row("cpu/imagevec_step_full_zero", result["imagevec_step_full_zero_ms"],
                            result["imagevec_forward_backward_ms"], "ms/step", "imagevec_forward_backward",
                            f"{what}; whole gradient buffer zeroed every step (before)")]

    rows += harness.attempt("cpu/imagevec_step", imagevec_rows)
    return {"rows": rows, "details": details}


def _compile_rows(steps: int, repeats: int, details: dict) -> list[dict]:
    """CUDA only: the trainer with ``compile=True`` (and bf16) against the uncompiled hand-written loop."""
    device = torch.device("cuda")
    data = make_data(BATCH * (COMPILE_WARMUP + steps))
    best = harness.interleaved_best({
        "bare_fused": lambda: statistics.median(bare_loop(device, data, steps, "fused")),
        "trainer_compile": lambda: statistics.median(trainer_loop(device, data, steps, compile_=True)),
    }, repeats)
    details["cuda_compile_ms"] = {name: round(1e3 * s, 3) for name, s in best.items()}
    return [harness.row("cuda/bf16/compile/trainer", BATCH / best["trainer_compile"], BATCH / best["bare_fused"],
                        "pairs/s", "bare_fused (not compiled)", "cuda, bf16, torch.compile, ImageVec-like")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each variant")
    parser.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    parser.add_argument("--imagevec", action="store_true", help="only the ImageVec step benchmark (CPU)")
    args = parser.parse_args()
    if args.imagevec:
        print(json.dumps(bench_imagevec(args.steps, args.repeats)))
        return
    devices = [torch.device("cpu")] if args.device in ("cpu", "both") else []
    if args.device in ("cuda", "both") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device in devices:
        print(json.dumps(bench(device, args.steps, args.repeats)))


if __name__ == "__main__":
    main()
