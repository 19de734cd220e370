"""The optimisation loop shared by every trainer: AdamW + one-cycle schedule, evaluation, checkpoints, resume."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from reefmap.config import TrainingRun
from reefmap.errors import UsageError
from reefmap.io.files import atomic_path


@dataclass
class LoopResult:
    iterations: int
    history: list[dict] = field(default_factory=list)


def run_loop(model: torch.nn.Module, settings: TrainingRun, step: Callable[[np.random.Generator], dict],
             evaluate: Callable[[], dict], log: Callable[[str], None]) -> LoopResult:
    """Run `settings.iterations` steps; every `settings.eval_every` log metrics and save a checkpoint beside `settings.out`.

    `step(rng)` returns named scalar tensors whose sum is minimised (the first sets the
    printed loss names); `evaluate()` returns validation metrics. With `settings.resume` the loop
    continues from the checkpoint; with `settings.time_limit_min` it stops early, still evaluated.
    The model is left in eval mode.
    """
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-4)
    checkpoint = Path(settings.out).with_suffix(".ckpt")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    start, history = 0, []
    if settings.resume and checkpoint.exists():
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
        except Exception as error:  # torch reports a torn or foreign file with many exception types
            raise UsageError(f"checkpoint {checkpoint} cannot be resumed ({str(error).splitlines()[0][:120]}): "
                             "delete it to start again, or train without --resume") from None
        start, history = state["iteration"], state["history"]
        log(f"resumed from {checkpoint} at iteration {start}")
    rng = np.random.default_rng(settings.seed + start)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.lr, total_steps=settings.iterations,
                                                   pct_start=0.05, last_epoch=start - 1)
    started = time.time()
    model.train()
    done = start
    bar = tqdm(total=settings.iterations, initial=start, unit="step", desc="training", mininterval=30, file=sys.stderr)
    while done < settings.iterations:
        losses = step(rng)
        optimiser.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimiser.step()
        schedule.step()
        done += 1
        bar.update()
        out_of_time = settings.time_limit_min and time.time() - started > 60 * settings.time_limit_min
        if done % settings.eval_every == 0 or done == settings.iterations or out_of_time:
            model.eval()
            with torch.inference_mode():
                metrics = evaluate()
            model.train()
            history.append({"iteration": done, **{k: v.item() for k, v in losses.items()},
                            "minutes": round((time.time() - started) / 60, 2), **metrics})
            log(json.dumps(history[-1]))
            with atomic_path(checkpoint) as partial:  # a kill while saving keeps the previous checkpoint
                torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "iteration": done,
                            "history": history}, partial)
            if out_of_time:
                log(f"time limit of {settings.time_limit_min} min reached at iteration {done}")
                break
    bar.close()
    model.eval()  # what follows (final metrics, saving) must not move batch-norm statistics
    return LoopResult(done, history)
