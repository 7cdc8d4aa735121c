"""The two maps of Part 1, computed from data: the book map (stages of building a large model,
each node a seed entry linked to the notebook that computes it) and the RL algorithm map (a
table of algorithms, the ones the book implements linked to their ``lib`` symbol and notebook).

Book: seed-1, seed-1-5.
"""
from __future__ import annotations

import dataclasses
import pathlib
import textwrap

from . import ROOT
from .book import check_book, load_seed_map, toc_files
from . import registry

RL_FAMILIES = registry.FAMILIES
ENTRY_FONTSIZE = 8  # points; the book map's entry text (11 px at the book's 100 dpi)
RL_COLUMNS = registry.ALGORITHM_COLUMNS
resolve_symbol = registry.resolve_symbol


@dataclasses.dataclass(frozen=True)
class Node:
    label: str
    title: str
    chapter: str
    stage: str
    notebook: str | None      # path without suffix, relative to the book root; None = not yet written
    diagram: str


def load_book_map(path: pathlib.Path | str | None = None) -> dict:
    """``data/book-map.yml``, validated: stage ids unique, ``feeds`` name pipeline stages."""
    import yaml

    path = pathlib.Path(path) if path is not None else ROOT / "data" / "book-map.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("pipeline", "foundations"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"{path}: '{key}' must be a non-empty list of stages")
    stages = data["pipeline"] + data["foundations"]
    ids = [s["id"] for s in stages]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: stage ids must be unique, got {ids}")
    pipe = {s["id"] for s in data["pipeline"]}
    for s in data["foundations"]:
        bad = set(s.get("feeds", [])) - pipe
        if bad:
            raise ValueError(f"{path}: stage {s['id']!r} feeds unknown pipeline stages {sorted(bad)}")
    chapters = [c for s in stages for c in s["chapters"]]
    if len(set(chapters)) != len(chapters):
        raise ValueError(f"{path}: a chapter is assigned to more than one stage")
    data.setdefault("short_titles", {})
    return data


def book_nodes(root: pathlib.Path | str | None = None, book_map: dict | None = None) -> list[Node]:
    """One node per seed entry, in seed order, with its stage and (if written) its notebook."""
    root = pathlib.Path(root) if root is not None else ROOT
    book_map = book_map or load_book_map(root / "data" / "book-map.yml")
    stage_of = {c: s["id"] for s in book_map["pipeline"] + book_map["foundations"] for c in s["chapters"]}
    covered = check_book(root).covered
    nodes = []
    for e in load_seed_map(root / "data" / "seed-map.yml"):
        if e.chapter not in stage_of:
            raise ValueError(f"chapter {e.chapter} of {e.label} is not assigned to a stage in book-map.yml")
        title = _ascii_punct(e.title_en or book_map["short_titles"].get(e.label) or e.title_zh)
        nb = covered.get(e.label)
        nodes.append(Node(e.label, str(title), e.chapter, stage_of[e.chapter],
                          nb[: -len(".ipynb")] if nb else None, e.diagram))
    return nodes


_PUNCT = str.maketrans({"、": ", ", "，": ", ", "（": " (", "）": ")", "：": ": ", "“": '"', "”": '"'})


def _ascii_punct(text: str) -> str:
    """Replace full-width punctuation in an English title (plot fonts have no CJK glyphs)."""
    return " ".join(str(text).translate(_PUNCT).split())


def check_book_map(nodes: list[Node], root: pathlib.Path | str | None = None) -> list[str]:
    """Every node with a notebook resolves to a file listed in ``_toc.yml``."""
    root = pathlib.Path(root) if root is not None else ROOT
    toc = set(toc_files(root))
    out = []
    for n in nodes:
        if n.notebook is None:
            continue
        if not (root / f"{n.notebook}.ipynb").is_file():
            out.append(f"{n.label}: notebook {n.notebook}.ipynb does not exist")
        elif n.notebook not in toc:
            out.append(f"{n.label}: notebook {n.notebook} is not listed in _toc.yml")
        elif not n.notebook.startswith(f"chapters/{n.chapter}/"):
            out.append(f"{n.label}: notebook {n.notebook} is outside chapters/{n.chapter}/")
    return out


def draw_book_map(nodes: list[Node], book_map: dict, max_chars: int = 20):
    """The book map: pipeline stages on top (arrows in build order), foundations below, one
    small box per seed entry, filled when a notebook computes it and outlined when not yet.

    The figure is 10.5 in wide (the book's column) and its entry text is 8 pt (11 px at
    100 dpi), so titles are cut to ``max_chars`` characters to fit a column."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from .viz import DARK, PALETTE

    colors = [PALETTE["blue"], PALETTE["yellow"], PALETTE["pink"], PALETTE["purple"], PALETTE["blue"]]
    rows = [book_map["pipeline"], book_map["foundations"]]
    per_stage = {s["id"]: [n for n in nodes if n.stage == s["id"]] for r in rows for s in r}
    height = [max(len(per_stage[s["id"]]) for s in r) for r in rows]
    box_h, gap = 0.32, 1.4
    total_h = (sum(height) * box_h) + 3 * gap
    # 10.5 in wide: the book's column width, so the text is not shrunk on the page
    fig, ax = plt.subplots(figsize=(10.5, 0.62 * total_h + 0.8))
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.96)
    ax.set_xlim(0, 5)
    ax.set_ylim(-total_h, 0.2)
    ax.axis("off")
    centers = {}
    y_top = 0.0
    for r, row in enumerate(rows):
        for i, stage in enumerate(row):
            x0, w = i + 0.04, 0.92
            items = per_stage[stage["id"]]
            done = sum(n.notebook is not None for n in items)
            label = textwrap.fill(stage["title"], 20)
            ax.text(x0 + w / 2, y_top - 0.3, f"{label}\n{done}/{len(items)} computed",
                    ha="center", va="center", fontsize=9, fontweight="bold", color=DARK["grey"])
            for k, n in enumerate(items):
                y = y_top - 0.95 - k * box_h
                fill = colors[i % len(colors)] if n.notebook else "white"
                ax.add_patch(Rectangle((x0, y - box_h * 0.42), w, box_h * 0.84, facecolor=fill,
                                       edgecolor=DARK["grey"] if n.notebook else "#BBBBBB", linewidth=0.6,
                                       url=None))
                text = n.title if len(n.title) <= max_chars else n.title[: max_chars - 1] + "…"
                ax.text(x0 + 0.02, y, f"{n.label[5:]} {text}", va="center", fontsize=ENTRY_FONTSIZE,
                        color="black" if n.notebook else "#999999", family="DejaVu Sans")
            centers[stage["id"]] = (x0 + w / 2, y_top - 0.05, y_top - 0.95 - len(items) * box_h)
        y_top -= height[r] * box_h + gap
    pipe = rows[0]
    for a, b in zip(pipe, pipe[1:]):
        (xa, ya, _), (xb, yb, _) = centers[a["id"]], centers[b["id"]]
        ax.add_patch(FancyArrowPatch((xa + 0.38, ya - 0.25), (xb - 0.38, yb - 0.25), arrowstyle="-|>",
                                     mutation_scale=14, color=DARK["blue"], linewidth=1.5))
    for s in rows[1]:
        for target in s.get("feeds", []):
            xs, ys, _ = centers[s["id"]]
            xt, _, yt_bottom = centers[target]
            ax.add_patch(FancyArrowPatch((xs, ys + 0.05), (xt, yt_bottom - 0.1), arrowstyle="-|>",
                                         mutation_scale=10, color=DARK["purple"], linewidth=0.8,
                                         linestyle="--", alpha=0.7))
    covered = sum(n.notebook is not None for n in nodes)
    ax.set_title(f"The book map: {covered} of {len(nodes)} seed entries computed\n"
                 "(filled = a notebook computes it; dashed arrows = foundations feeding a stage)",
                 fontsize=10)
    return fig


def load_rl_algorithms(path: pathlib.Path | str | None = None) -> list[dict]:
    """The algorithm registry ``data/rl-algorithms.csv``, validated (see :mod:`lib.registry`)."""
    return registry.load_table("algorithms", path)


def check_rl_algorithms(rows: list[dict], root: pathlib.Path | str | None = None) -> list[str]:
    """Each implemented row names an importable lib symbol and a notebook in the TOC that uses it."""
    return registry.check_links(rows, root)


def draw_rl_timeline(rows: list[dict]):
    """Algorithms in order of publication (x, labelled with years) by family (y); marker shape =
    on/off-policy, filled = the book implements it, thick purple border = model-based."""
    import matplotlib.pyplot as plt

    from .viz import DARK, PALETTE

    families = [f for f in RL_FAMILIES if any(r["family"] == f for r in rows)]
    ordered = sorted(rows, key=lambda r: (r["year"], r["name"]))
    fig, ax = plt.subplots(figsize=(10.5, 7))  # the book's column width
    marker = {"on-policy": "o", "off-policy": "s", "offline": "^", "n/a": "D"}
    seen_in_family: dict = {}
    for x, r in enumerate(ordered):
        y = families.index(r["family"])
        k = seen_in_family.get(y, 0)
        seen_in_family[y] = k + 1
        yy = y + (0.3 if k % 2 else 0.0)
        impl = bool(r["lib_symbol"])
        ax.scatter(x, yy, marker=marker[r["policy"]], s=70,
                   facecolor=PALETTE["pink"] if impl else "white",
                   edgecolor=DARK["purple"] if r["model"] == "model-based" else DARK["blue"],
                   linewidth=2.0 if r["model"] == "model-based" else 1.0, zorder=3)
        ax.annotate(r["name"], (x, yy), xytext=(4, 4), textcoords="offset points", fontsize=7, rotation=12)
    ticks = []
    for i, r in enumerate(ordered):  # first of each five-year span, at least 3 apart
        new_span = i == 0 or r["year"] // 5 != ordered[i - 1]["year"] // 5
        if new_span and (not ticks or i - ticks[-1] >= 3):
            ticks.append(i)
    ax.set_xticks(ticks, [str(ordered[i]["year"]) for i in ticks], rotation=45)
    ax.set_xlim(-1, len(ordered) + 3)
    ax.set_yticks(range(len(families)), families)
    ax.set_ylim(-0.6, len(families))
    for m, lab in [("o", "on-policy"), ("s", "off-policy"), ("^", "offline (fixed data)"), ("D", "planning / n/a")]:
        ax.scatter([], [], marker=m, facecolor="white", edgecolor=DARK["blue"], label=lab)
    ax.scatter([], [], marker="o", facecolor=PALETTE["pink"], edgecolor=DARK["blue"], label="implemented in lib")
    ax.scatter([], [], marker="o", facecolor="white", edgecolor=DARK["purple"], linewidth=2, label="model-based")
    # below the axes (under the x label), where it covers no algorithm
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    return fig, ax


def coverage_by_stage(nodes: list[Node]) -> dict[str, float]:
    """Fraction of seed entries computed in each stage (stages in first-seen order)."""
    totals: dict[str, list[int]] = {}
    for n in nodes:
        if not isinstance(n, Node):
            raise TypeError(f"expected lib.bookmap.Node items, got {type(n).__name__}")
        t = totals.setdefault(n.stage, [0, 0])
        t[0] += n.notebook is not None
        t[1] += 1
    return {stage: done / total for stage, (done, total) in totals.items()}
