"""Shared by the RL benchmark scripts: the JSON record each run writes to ``bench/results/``.

A record is one JSON object, rewritten after every finished run so that an interrupted benchmark
leaves the seeds it finished (``"complete": false`` until the last run is in):

* ``benchmark``, ``env_id``, ``threshold``, ``budget_steps``, ``goal``: what is measured;
* ``header``: command, commit (``git rev-parse HEAD`` and whether the tree had changes), start and
  end time (UTC), machine (``nproc``, CPU model, load average at start and end), versions (python,
  torch, stable-baselines3, gymnasium, numpy), torch threads;
* ``libraries``: for each contender, a description and its configuration;
* ``comparisons``: the pairs ``[lib, reference]`` whose wall-time ratio is reported;
* ``seeds`` and ``runs``: one entry per (seed, library) with ``steps_to_threshold`` (first evaluation
  whose mean return reached the threshold, or null), ``curve`` (``[step, mean return]`` pairs),
  ``final_mean`` / ``final_std`` / ``final_episodes``, ``train_seconds`` (wall time without the
  evaluations), ``eval_seconds`` and the 1-minute load average before and after the run.
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.provenance import cpu_model, git_commit, loadavg, tree_dirty  # noqa: E402


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(argv: list[str] | None = None) -> dict:
    """Command, commit, date, machine and versions at the start of a benchmark."""
    import numpy
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": numpy.__version__}
    for name, mod in (("stable_baselines3", "stable_baselines3"), ("gymnasium", "gymnasium")):
        try:
            versions[name] = __import__(mod).__version__
        except ImportError:
            versions[name] = None
    args = sys.argv[1:] if argv is None else list(argv)
    script = pathlib.Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    threads = os.environ.get("OMP_NUM_THREADS")
    cmd = " ".join(([f"OMP_NUM_THREADS={threads}"] if threads else [])
                   + ["python", str(script), *args])
    return {"command": cmd, "commit": git_commit(),
            "tree_dirty": tree_dirty(),
            "date_start": now(), "date_end": None,
            "machine": {"nproc": os.cpu_count(), "cpu_model": cpu_model(),
                        "platform": platform.platform(), "loadavg_start": loadavg(),
                        "loadavg_end": None},
            "versions": versions, "torch_threads": torch.get_num_threads()}


def first_reaching(curve: list, threshold: float) -> int | None:
    """The step of the first ``[step, mean return]`` point whose return is ``>= threshold``."""
    return next((int(s) for s, r in curve if r >= threshold), None)


class Record:
    """A benchmark's JSON record, rewritten to ``path`` after every run."""

    def __init__(self, path, *, benchmark: str, env_id: str, threshold: float, budget_steps: int,
                 goal: str, libraries: dict, comparisons: list, seeds: list, argv=None):
        self.path = pathlib.Path(path)
        self.data = {"benchmark": benchmark, "env_id": env_id, "threshold": threshold,
                     "budget_steps": budget_steps, "goal": goal, "header": header(argv),
                     "libraries": libraries, "comparisons": comparisons,
                     "seeds": list(seeds), "complete": False, "runs": []}

    def add(self, seed: int, library: str, res: dict, load_before: list) -> dict:
        """Append one run; ``res`` has ``curve``, ``final`` (array of returns), ``train_seconds``,
        ``eval_seconds``."""
        curve = [[int(s), float(r)] for s, r in res["curve"]]
        final = [float(x) for x in res["final"]]
        run = {"seed": int(seed), "library": library,
               "steps_to_threshold": first_reaching(curve, self.data["threshold"]),
               "curve": curve, "final_mean": sum(final) / len(final),
               "final_std": (sum((x - sum(final) / len(final)) ** 2 for x in final)
                             / len(final)) ** 0.5,
               "final_episodes": len(final), "train_seconds": float(res["train_seconds"]),
               "eval_seconds": float(res["eval_seconds"]),
               "loadavg_before": load_before, "loadavg_after": loadavg()}
        self.data["runs"].append(run)
        self.write()
        return run

    def finish(self) -> None:
        self.data["complete"] = True
        self.write()

    def write(self) -> None:
        self.data["header"]["date_end"] = now()
        self.data["header"]["machine"]["loadavg_end"] = loadavg()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        tmp.replace(self.path)


def print_run(name: str, run: dict) -> None:
    print(f"{name} seed {run['seed']} {run['library']:>8}: steps to threshold "
          f"{run['steps_to_threshold']}, final {run['final_mean']:.1f} ± {run['final_std']:.1f}, "
          f"train {run['train_seconds']:.1f} s, load {run['loadavg_before'][:1]} -> "
          f"{run['loadavg_after'][:1]}", flush=True)


def merge(out, parts, seeds=None) -> dict:
    """Merge records of the same benchmark run as parallel parts (disjoint seeds) into ``out``.

    The merged header keeps every part's header under ``parts`` and joins their commands; the
    runs are the union, in seed order (a seed is finished when every library ran it).
    ``seeds`` is the intended set (default: the union of the parts' seeds); the record is
    ``complete`` when every intended seed finished."""
    recs = [json.loads(pathlib.Path(p).read_text()) for p in parts]
    if not recs:
        raise ValueError("merge needs at least one part")
    keys = ("benchmark", "env_id", "threshold", "budget_steps", "libraries", "eval_every")
    for r in recs[1:]:
        for k in keys:
            if r.get(k) != recs[0].get(k):
                raise ValueError(f"parts differ in {k!r}: {r.get(k)!r} vs {recs[0].get(k)!r}")
    done = {}
    for r in recs:
        for run in r["runs"]:
            k = (run["seed"], run["library"])
            if k in done:
                raise ValueError(f"seed {k[0]} of {k[1]} appears in two parts")
            done[k] = run
    libs = list(recs[0]["libraries"])
    have = sorted({s for s, _ in done})
    finished = [s for s in have if all((s, k) in done for k in libs)]
    intended = sorted(set(seeds) if seeds is not None else set().union(*(r["seeds"] for r in recs)))
    heads = [r["header"] for r in recs]
    head = json.loads(json.dumps(heads[0]))
    head["command"] = " ; ".join(h["command"] for h in heads) + "  (parallel parts, merged)"
    head["date_start"] = min(h["date_start"] for h in heads)
    head["date_end"] = max(h["date_end"] for h in heads)
    head["machine"]["loadavg_start"] = heads[0]["machine"]["loadavg_start"]
    last = max(heads, key=lambda h: h["date_end"])
    head["machine"]["loadavg_end"] = last["machine"]["loadavg_end"]
    head["tree_dirty"] = any(h["tree_dirty"] for h in heads)
    head["parts"] = heads
    data = {k: recs[0][k] for k in recs[0] if k not in ("header", "runs", "seeds", "complete")}
    data.update(header=head, seeds=intended, complete=set(intended) <= set(finished),
                runs=sorted(done.values(), key=lambda run: (run["seed"], libs.index(run["library"]))))
    pathlib.Path(out).write_text(json.dumps(data, indent=1) + "\n")
    return data


def report(rec: dict) -> str:
    """A Markdown summary of one record (for bench/RESULTS.md): provenance, per-seed table,
    per-library summary and the per-seed wall-time ratios."""
    import statistics

    libs = list(rec["libraries"])
    runs = {(r["seed"], r["library"]): r for r in rec["runs"]}
    seeds = [s for s in rec["seeds"] if all((s, k) in runs for k in libs)]
    h, m = rec["header"], rec["header"]["machine"]
    loads = [r["loadavg_before"][0] for r in rec["runs"]] + [r["loadavg_after"][0] for r in rec["runs"]]
    algo = rec["benchmark"].split("_")[0].upper()
    out = [f"### {algo} on {rec['env_id']} ({rec['budget_steps'] // 1000}k steps): "
           + " vs ".join(libs), "", f"Goal: {rec['goal']}.", "",
           f"Command: `{h['command']}`", "",
           f"Commit `{h['commit'][:7]}`{' plus uncommitted changes' if h['tree_dirty'] else ''}; "
           f"{h['date_start']} → {h['date_end']}; {m['nproc']} × {m['cpu_model']}; 1-minute load "
           f"average seen by the runs {min(loads):.1f}–{max(loads):.1f}; torch {h['versions']['torch']}, "
           f"SB3 {h['versions']['stable_baselines3']}, {h['torch_threads']} torch thread(s). "
           f"{len(seeds)} of {len(rec['seeds'])} seeds finished.", ""]
    fmt = lambda s: "—" if s is None else f"{s:,}"  # noqa: E731
    out.append("| seed | " + " | ".join(f"{k}: steps to {rec['threshold']:g} | {k}: final | {k}: train s"
                                        for k in libs) + " |")
    out.append("|---" * (1 + 3 * len(libs)) + "|")
    for s in sorted({r["seed"] for r in rec["runs"]}):
        cells = []
        for k in libs:
            r = runs.get((s, k))
            cells += (["not run"] * 3 if r is None else
                      [fmt(r["steps_to_threshold"]), f"{r['final_mean']:.1f} ± {r['final_std']:.1f}",
                       f"{r['train_seconds']:.1f}"])
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    out.append("")
    for k in libs:
        rs = [r for r in rec["runs"] if r["library"] == k]
        if not rs:
            out.append(f"* **{k}** ({rec['libraries'][k]['description']}): no run finished yet")
            continue
        hit = [r["steps_to_threshold"] for r in rs if r["steps_to_threshold"] is not None]
        med = f"{statistics.median(hit):,.0f}" if hit else "—"
        finals = [r["final_mean"] for r in rs]
        out.append(f"* **{k}** ({rec['libraries'][k]['description']}): reached {rec['threshold']:g} in "
                   f"{len(hit)}/{len(rs)} seeds run, median {med} steps; final return "
                   f"{statistics.mean(finals):.1f} ± {statistics.pstdev(finals):.1f} (mean ± std over "
                   f"seeds); median training time {statistics.median(r['train_seconds'] for r in rs):.1f} s")
    for a, b in rec["comparisons"]:
        both = sorted(s for s, k in runs if k == a and (s, b) in runs)
        rr = [runs[(s, a)]["train_seconds"] / runs[(s, b)]["train_seconds"] for s in both]
        if rr:
            out.append(f"* wall-time ratio {a} / {b} per seed (seeds {both}): "
                       + ", ".join(f"{x:.2f}" for x in rr) + f" (median **{statistics.median(rr):.2f}**)")
        else:
            out.append(f"* wall-time ratio {a} / {b}: no seed has both runs yet")
    out.append("")
    lib_runs = [r for r in rec["runs"] if r["library"] == libs[0]]
    hits = sum(r["steps_to_threshold"] is not None for r in lib_runs)
    need = len(rec["seeds"]) - 1
    verdict = ("met" if hits >= need else "not met") if len(lib_runs) == len(rec["seeds"]) else \
        ("so far met (at most one miss)" if len(lib_runs) - hits <= 1 else "not met")
    out.append(f"* Goal \"≥ {rec['threshold']:g} within {rec['budget_steps']:,} steps in ≥ {need} of "
               f"{len(rec['seeds'])} seeds\": {libs[0]} reached it in {hits} of {len(lib_runs)} seeds run — "
               f"**{verdict}**.")
    for a, b in rec["comparisons"]:
        both = sorted(s for s, k in runs if k == a and (s, b) in runs)
        if both:
            med = statistics.median(runs[(s, a)]["train_seconds"] / runs[(s, b)]["train_seconds"] for s in both)
            out.append(f"* Goal \"training wall time ≤ {b}'s\": median per-seed ratio {med:.2f} over "
                       f"{len(both)} seeds — {'met' if med <= 1 else 'not met'} on this machine (shown, not "
                       f"asserted: it depends on the machine and its load).")
    return "\n".join(out)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="merge parallel parts of a record, or print a Markdown "
                                             "report of records")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m_ = sub.add_parser("merge")
    m_.add_argument("out")
    m_.add_argument("parts", nargs="+")
    m_.add_argument("--seeds", type=int, nargs="+", default=None, help="the intended seeds")
    r_ = sub.add_parser("report")
    r_.add_argument("records", nargs="+")
    a = ap.parse_args()
    if a.cmd == "merge":
        d = merge(a.out, a.parts, a.seeds)
        print(f"{a.out}: seeds {d['seeds']}, {len(d['runs'])} runs")
    else:
        for path in a.records:
            print(report(json.loads(pathlib.Path(path).read_text())) + "\n")
