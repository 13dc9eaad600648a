"""mmbench's one trainer: every trainable model plugin supplies a module, losses, data and a config.

A plugin never writes a loop::

    from mmbench.train import Objective, TrainConfig, Trainer, Validator, seed_everything
    from mmbench.train.losses import in_batch_softmax

    seed_everything(cfg.train.seed)                      # before building the model
    model = ImageVec(vocab_size, dim=300)
    ranking = Objective("ranking", lambda m, b: in_batch_softmax(m.encode_text(b["bow"]), m.encode_image(b["img"])))
    result = Trainer(model, ranking, dataset, cfg.train, run_dir=run_dir,
                     validator=Validator(lambda m: recall_at_10(m), name="r@10")).fit(resume=True)

Pieces (each module is small):

- ``config``: ``TrainConfig`` (typed, frozen; plugins embed it), ``Objective`` (a named loss with its own
  parameters, optimizer settings and ``every`` N steps), ``Validator`` (a metric and its direction).
- ``loop``: ``Trainer.fit(resume=...)`` -> ``TrainResult``. Each step: the global batch for (seed, epoch,
  position); for each objective due at this step, in order: schedule lr, forward under AMP, backward,
  clip, optimizer step. Losses and NaN/inf flags stay on the device until a sync every ``log_every``
  steps (and before validation or a checkpoint), where a bad value raises ``NonFiniteLossError`` naming
  the first bad step; no checkpoint is ever written after it.
- ``data``: batches are a pure function of (seed, epoch, position), hence exact resume; under torchrun
  rank r gets the r-th contiguous share of each global batch (per-rank batch = batch_size / world_size).
- ``checkpoint``: safetensors + JSON, atomic publish, SHA-256 checked; no pickle anywhere.
- ``schedules``: ``lr_factor`` (constant, step, warmup, cosine, warmup-cosine, multistep, warmup-multistep) as pure functions of step.
- ``distributed``: ``world_size()``, ``rank()``, ``is_main_process()``, ``all_gather_with_grad`` for
  in-batch negatives across ranks; DDP is used automatically when ``WORLD_SIZE > 1``.
- ``encode``: batched inference, optionally split across ranks and gathered back in input order.
- ``monitor``: ``<run_dir>/metrics.jsonl``, a rich progress bar, optional TensorBoard.
- ``tracking``: ``TrackedMetric``s (e.g. AME's alignment ratio, ``alignment_ratio_metric``) logged every
  N steps, never steering training.

See docs/training.md for a complete example and torchrun launch lines.
"""

from .config import Objective, TrainConfig, Validator
from .errors import CheckpointError, NonFiniteLossError, TrainingError

# Everything else needs torch, imported on first use (PEP 562): a plugin's config, which embeds
# TrainConfig, is read when plugins register (``mmbench --help``), and torch costs seconds to import.
_LAZY = {
    "encode": ".encoding",
    "Trainer": ".loop",
    "TrainResult": ".loop",
    "read_metrics": ".monitor",
    "seed_everything": ".rng",
    "lr_factor": ".schedules",
    "schedule_factor": ".schedules",
    "TrackedMetric": ".tracking",
    "alignment_ratio_metric": ".tracking",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "Objective",
    "TrainConfig",
    "TrackedMetric",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "Validator",
    "alignment_ratio_metric",
    "encode",
    "lr_factor",
    "read_metrics",
    "schedule_factor",
    "seed_everything",
]
