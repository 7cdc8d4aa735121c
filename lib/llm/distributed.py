"""Data parallelism for the tiny LM with ``torch.distributed``: DDP and FSDP on CPU processes.

Each process (a *rank*) holds a copy of the model and takes its share of every global batch.

* **DDP** (``DistributedDataParallel``, Li et al. 2020): every rank keeps the full model and
  the full optimizer state; after the backward pass the gradients are averaged across ranks
  with an all-reduce, so every rank takes the same optimizer step. With equal token counts per
  rank the averaged gradient *is* the gradient of the whole global batch in one process.
* **FSDP** (``fully_shard``, FSDP2, Zhao et al. 2023; the idea of ZeRO stage 3): each
  parameter is split along its first dimension, one shard per rank. Before a block runs, its
  full weights are all-gathered; after the backward pass its gradients are reduce-scattered,
  so each rank keeps only its shard of the parameters, gradients and AdamW moments — about
  ``1 / world_size`` of the replicated bytes — and the result equals DDP's.

One function runs on every rank, :func:`run_rank`, after ``init_process_group`` has read the
rank, the world size and the rendezvous address from the environment (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), exactly what ``torchrun`` sets. So the
same entry point runs unchanged:

* on one machine with two processes::

      torchrun --nproc-per-node=2 -m lib.llm.distributed --out /tmp/dp

* on two machines with two processes each (run on both; ``HOST`` is the first machine)::

      torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d \\
          --rdzv-endpoint=HOST:29500 -m lib.llm.distributed --out /shared/dp

* from Python (the notebook): :func:`train_data_parallel` starts the processes itself with the
  same environment variables on a free local port, waits for them with a timeout, reads what
  they wrote into a temporary folder and always stops them and removes the folder.

Each rank writes, per mode, its step-0 gradients and its final weights (full tensors: FSDP
gathers its shards) to ``<mode>-rank<r>.safetensors`` and its losses and bytes per rank
(parameters, gradients, optimizer state; DTensor shards counted locally) to
``<mode>-rank<r>.json``. :func:`train_single` is the reference: the same model, the same
global batches, one process.

Book: seed-102.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import torch

from lib.runs import Run, Stopwatch, TrainLog, check_choice, check_int, check_positive, check_range

MODES = ("ddp", "fsdp")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


@dataclasses.dataclass(frozen=True)
class DistConfig:
    """One data-parallel training run of a small tiny-LM (every rank builds the same model).

    seed: seeds the initial weights (all ranks) and the batches.
    modes: which wrappings to run, in order, in the same processes: ``"ddp"``, ``"fsdp"``.
    steps: optimizer steps (AdamW); 2–10 is enough to compare weights.
    global_batch: sequences per step over all ranks (divisible by the world size).
    seq_len: tokens per sequence.
    lr, weight_decay: AdamW (weight decay on matrices only, as :func:`lib.llm.train.make_optimizer`).
    d_model, n_layers, n_heads, n_kv_heads: the model's size (a small sibling of ``tiny-lm``).
    vocab_size: token ids (the book tokenizer has 1024).
    dtype: ``"float64"`` makes the comparison with one process exact up to 1e-12 (Adam's division
        by ``sqrt(v)`` magnifies float32 rounding of tiny gradients); ``"float32"`` as in practice.
    threads: torch threads per rank.
    """

    seed: int = 0
    modes: tuple = MODES
    steps: int = 3
    global_batch: int = 8
    seq_len: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.1
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 1024
    dtype: str = "float64"
    threads: int = 1

    def __post_init__(self):
        check_int(self, "seed", minimum=0)
        check_int(self, "steps", "global_batch", "seq_len", "d_model", "n_layers", "n_heads",
                  "n_kv_heads", "vocab_size", "threads")
        check_positive(self, "lr")
        check_range(self, "weight_decay", 0.0, 1.0)
        check_choice(self, "dtype", tuple(DTYPES))
        modes = tuple(self.modes) if isinstance(self.modes, (list, tuple)) else None
        if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
            raise ValueError(f"DistConfig.modes must be a non-empty tuple of distinct modes from "
                             f"{MODES}, got {self.modes!r}")
        object.__setattr__(self, "modes", modes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "DistConfig":
        return cls(**json.loads(text))


# ----------------------------------------------------------------------------- pieces
def make_batches(cfg: DistConfig, tokens: torch.Tensor) -> torch.Tensor:
    """The global batches of the run: windows (steps, global_batch, seq_len + 1) of ``tokens``
    drawn by a generator seeded with ``cfg.seed`` (inputs ``w[..., :-1]``, targets ``w[..., 1:]``)."""
    from lib.llm.train import random_batch

    if not isinstance(cfg, DistConfig):
        raise TypeError(f"cfg must be a DistConfig, got {type(cfg).__name__}")
    gen = torch.Generator().manual_seed(cfg.seed)
    out = []
    for _ in range(cfg.steps):
        x, y = random_batch(tokens, cfg.global_batch, cfg.seq_len, gen)
        out.append(torch.cat([x, y[:, -1:]], 1))
    w = torch.stack(out)
    if int(w.max()) >= cfg.vocab_size:
        raise ValueError(f"token ids reach {int(w.max())}, beyond vocab_size {cfg.vocab_size}")
    return w


def build_model(cfg: DistConfig):
    """The run's TinyLM, initialised from ``cfg.seed`` (identical on every rank), in ``cfg.dtype``."""
    from lib.llm.config import LMConfig
    from lib.llm.model import TinyLM

    torch.manual_seed(cfg.seed)
    lm_cfg = LMConfig(vocab_size=cfg.vocab_size, d_model=cfg.d_model, n_layers=cfg.n_layers,
                      n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads, max_seq_len=cfg.seq_len)
    return TinyLM(lm_cfg).to(DTYPES[cfg.dtype])


def rank_rows(windows: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous share of the rows of a global batch (dimension -2)."""
    B = windows.shape[-2]
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
    if B % world_size:
        raise ValueError(f"global batch {B} is not divisible by world size {world_size}")
    b = B // world_size
    return windows[..., rank * b:(rank + 1) * b, :]


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t  # a DTensor's shard on this rank


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t  # collective for a DTensor


def memory_per_rank(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Bytes this rank holds for the parameters, the gradients and the optimizer state
    (a sharded DTensor counts its local shard only)."""
    size = lambda t: _local(t).numel() * _local(t).element_size()  # noqa: E731
    return {"parameters": sum(size(p) for p in model.parameters()),
            "gradients": sum(size(p.grad) for p in model.parameters() if p.grad is not None),
            "optimizer": sum(size(v) for st in optimizer.state.values() for v in st.values()
                             if isinstance(v, torch.Tensor))}


def _train(model, forward, windows, rank, world_size, cfg, reduce_loss=None):
    """k AdamW steps on this rank's rows; returns (step-0 gradients, losses, optimizer)."""
    from lib.llm.train import make_optimizer

    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    grads0, losses = None, []
    for step in range(windows.shape[0]):
        w = rank_rows(windows[step], rank, world_size)
        out = forward(w[:, :-1], targets=w[:, 1:])
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if step == 0:
            grads0 = {n: _full(p.grad).detach().clone() for n, p in model.named_parameters()}
        opt.step()
        loss = out.loss.detach().double()
        losses.append(float(reduce_loss(loss) if reduce_loss else loss))
    return grads0, losses, opt


# ----------------------------------------------------------------------------- per rank
def run_rank(cfg: DistConfig, windows: torch.Tensor, out_dir) -> None:
    """The function every rank runs (after ``init_process_group``): for each mode, train
    ``cfg.steps`` steps on this rank's rows of ``windows`` and write the results to ``out_dir``."""
    import torch.distributed as dist
    from safetensors.torch import save_file
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel as DDP

    if not dist.is_initialized():
        raise RuntimeError("run_rank needs an initialised process group (init_process_group)")
    rank, world = dist.get_rank(), dist.get_world_size()
    out_dir = pathlib.Path(out_dir)
    torch.set_num_threads(cfg.threads)

    def mean_over_ranks(t):
        dist.all_reduce(t)
        return t / world

    for mode in cfg.modes:
        model = build_model(cfg)
        if mode == "ddp":
            forward = DDP(model)
        else:
            mesh = init_device_mesh("cpu", (world,))
            for block in model.layers:      # one all-gather / reduce-scatter group per block
                fully_shard(block, mesh=mesh)
            fully_shard(model, mesh=mesh)   # the rest: embeddings (tied head), final norm
            forward = model
        t0 = time.perf_counter()
        grads0, losses, opt = _train(model, forward, windows, rank, world, cfg, mean_over_ranks)
        seconds = time.perf_counter() - t0
        memory = memory_per_rank(model, opt)
        weights = {n: _full(p.detach()).clone() for n, p in model.named_parameters()}
        tensors = {f"grad.{n}": g.contiguous() for n, g in grads0.items()}
        tensors.update({f"weight.{n}": w.contiguous() for n, w in weights.items()})
        save_file(tensors, str(out_dir / f"{mode}-rank{rank}.safetensors"))
        info = {"mode": mode, "rank": rank, "world_size": world, "losses": losses,
                "memory": memory, "seconds": seconds, "backend": dist.get_backend(),
                "local_shapes": {n: list(_local(p).shape) for n, p in model.named_parameters()}}
        (out_dir / f"{mode}-rank{rank}.json").write_text(json.dumps(info), encoding="utf-8")
        dist.barrier()


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass
class ModeResult:
    """What one mode produced: rank 0's step-0 gradients and final weights (full tensors),
    every rank's final weights, the mean loss per step and each rank's bytes."""

    mode: str
    grads: dict
    weights: dict
    rank_weights: list
    losses: list
    memory: list           # one dict per rank: parameters, gradients, optimizer (bytes)
    local_shapes: list     # one dict per rank: parameter name -> local shape
    seconds: list


@dataclasses.dataclass
class DistRun(Run):
    """A data-parallel run: ``results[mode]`` for each mode, and the batches it trained on."""

    world_size: int = 1
    results: dict = dataclasses.field(default_factory=dict)
    windows: torch.Tensor | None = None


def _split(tensors: dict) -> tuple[dict, dict]:
    g = {k[len("grad."):]: v for k, v in tensors.items() if k.startswith("grad.")}
    w = {k[len("weight."):]: v for k, v in tensors.items() if k.startswith("weight.")}
    return g, w


def read_results(folder, modes, world_size: int) -> dict:
    """The :class:`ModeResult` of every mode from the files the ranks wrote into ``folder``."""
    from safetensors.torch import load_file

    folder = pathlib.Path(folder)
    out = {}
    for mode in modes:
        infos, rank_w, grads = [], [], None
        for r in range(world_size):
            infos.append(json.loads((folder / f"{mode}-rank{r}.json").read_text(encoding="utf-8")))
            g, w = _split(load_file(str(folder / f"{mode}-rank{r}.safetensors")))
            rank_w.append(w)
            grads = g if r == 0 else grads
        out[mode] = ModeResult(mode, grads, rank_w[0], rank_w, infos[0]["losses"],
                               [i["memory"] for i in infos], [i["local_shapes"] for i in infos],
                               [i["seconds"] for i in infos])
    return out


def train_single(cfg: DistConfig, windows: torch.Tensor) -> ModeResult:
    """The reference: the same model and the same global batches in one process."""
    model = build_model(cfg)
    t0 = time.perf_counter()
    grads, losses, opt = _train(model, model, windows, 0, 1, cfg)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    return ModeResult("single", grads, weights, [weights], losses, [memory_per_rank(model, opt)],
                      [{n: list(p.shape) for n, p in model.named_parameters()}],
                      [time.perf_counter() - t0])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_data_parallel(cfg: DistConfig, world_size: int = 2, tokens: torch.Tensor | None = None,
                        timeout_s: float = 180.0, progress: bool = False) -> DistRun:
    """Start ``world_size`` local processes running this module as ``torchrun`` would, collect
    their results and stop them (always: on success, error, timeout or interrupt).

    ``tokens``: the 1-D token ids the batches are drawn from (default: the corpus's validation
    split). Raises ``RuntimeError`` with the failing rank's log when a rank fails and
    ``TimeoutError`` after ``timeout_s`` seconds.
    """
    if not isinstance(cfg, DistConfig):
        raise TypeError(f"cfg must be a DistConfig, got {type(cfg).__name__}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if cfg.global_batch % world_size:
        raise ValueError(f"global_batch {cfg.global_batch} is not divisible by world_size "
                         f"{world_size}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    from safetensors.torch import save_file

    if tokens is None:
        from lib.llm.pretrain import corpus_token_ids

        tokens = corpus_token_ids("val")
    windows = make_batches(cfg, tokens)
    log = TrainLog()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="book-data-parallel-"))
    procs, logs = [], []
    try:
        with Stopwatch(log):
            save_file({"windows": windows.contiguous()}, str(tmp / "batches.safetensors"))
            (tmp / "config.json").write_text(cfg.to_json(), encoding="utf-8")
            port = free_port()
            path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
            for r in range(world_size):
                env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world_size),
                           LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=str(port), OMP_NUM_THREADS=str(cfg.threads),
                           PYTHONPATH=path)
                logs.append(open(tmp / f"rank{r}.log", "w", encoding="utf-8"))
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "lib.llm.distributed", "--config",
                     str(tmp / "config.json"), "--batches", str(tmp / "batches.safetensors"),
                     "--out", str(tmp)], cwd=ROOT, env=env, stdout=logs[-1],
                    stderr=subprocess.STDOUT))
            deadline = time.monotonic() + timeout_s
            while True:
                codes = [p.poll() for p in procs]
                if all(c == 0 for c in codes):
                    break
                bad = [r for r, c in enumerate(codes) if c not in (None, 0)]
                if bad:
                    text = (tmp / f"rank{bad[0]}.log").read_text(encoding="utf-8")
                    raise RuntimeError(f"rank {bad[0]} exited with status {codes[bad[0]]}; its "
                                       f"log ends:\n{text[-3000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {world_size} ranks did not finish in {timeout_s} s")
                time.sleep(0.05)
            results = read_results(tmp, cfg.modes, world_size)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores kill
                pass
        for f in logs:
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for mode, res in results.items():
        for step, loss in enumerate(res.losses):
            log.record_update(step, mode=MODES.index(mode), loss=loss)
    return DistRun(cfg, log, world_size, results, windows)


# ----------------------------------------------------------------------------- entry point
def main(argv=None) -> int:
    """Entry point of every rank (``torchrun ... -m lib.llm.distributed`` or the launcher)."""
    import torch.distributed as dist
    from safetensors.torch import load_file

    ap = argparse.ArgumentParser(prog="python -m lib.llm.distributed",
                                 description="Train the tiny LM data-parallel (one process per "
                                 "rank; rank and rendezvous from torchrun's environment).")
    ap.add_argument("--out", required=True, help="folder for each rank's results")
    ap.add_argument("--config", default=None, help="a DistConfig as JSON (file)")
    ap.add_argument("--batches", default=None, help="safetensors with 'windows' (default: drawn "
                    "from the corpus's validation split)")
    ap.add_argument("--modes", nargs="+", default=None, choices=MODES)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    kw = json.loads(pathlib.Path(args.config).read_text(encoding="utf-8")) if args.config else {}
    for name in ("modes", "steps", "seed"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    cfg = DistConfig(**kw)
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise SystemExit(f"missing environment variables {missing}: start this module with "
                         "torchrun (or lib.llm.distributed.train_data_parallel)")
    if args.batches:
        windows = load_file(args.batches)["windows"]
    else:
        from lib.llm.pretrain import corpus_token_ids

        windows = make_batches(cfg, corpus_token_ids("val"))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    try:
        run_rank(cfg, windows, out)
    finally:
        dist.destroy_process_group()
    return 0



__all__ = ["MODES", "DTYPES", "DistConfig", "make_batches", "build_model", "rank_rows",
           "memory_per_rank", "run_rank", "ModeResult", "DistRun", "read_results", "train_single",
           "free_port", "train_data_parallel", "main"]


if __name__ == "__main__":
    sys.exit(main())
