"""Plot bench/fleet.py --site-noop results: the no-op site.yml as a ratio to the ping floor, per variant and tree.

    .venv/bin/python bench/plot_site_noop.py docs/img/site-noop.png /tmp/noop2.json /tmp/noop16.json

Each JSON file is one fleet size as written by ``bench/fleet.py --site-noop --json FILE``; one panel each,
a bar per variant and tree, the 8x target as a line.
"""
from __future__ import annotations

import json
import sys

TARGET = 8


def panel(ax, result: dict) -> None:
    variants: list[str] = []
    for key in result["runs"]:
        variant = key.split("/")[0]
        if variant not in variants:
            variants.append(variant)
    trees = result["trees"]
    width = 0.8 / len(trees)
    for i, tree in enumerate(trees):
        ratios = [result["runs"].get(f"{v}/{tree}", {}).get("ratio", 0) for v in variants]
        bars = ax.bar([x + i * width for x in range(len(variants))], ratios, width, label=tree)
        for rect, ratio in zip(bars, ratios):
            if ratio:
                ax.text(rect.get_x() + rect.get_width() / 2, ratio, f"{ratio:.0f}x", ha="center", va="bottom",
                        fontsize=8)
    ax.axhline(TARGET, color="red", linestyle="--", linewidth=1, label=f"target {TARGET}x")
    ax.set_xticks([x + width * (len(trees) - 1) / 2 for x in range(len(variants))], variants)
    load = max([result["load"]] + [r.get("load", 0) for r in result["runs"].values()])
    ax.set_title(f"{result['nodes']} nodes: no-op site.yml / ping ({result['ping']:.2f} s), "
                 f"load <= {load:.0f}", fontsize=10)
    ax.set_ylabel("x the ping floor")
    ax.legend(fontsize=8)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    import matplotlib  # noqa: PLC0415  (only this script needs it)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out, files = argv[0], argv[1:]
    fig, axes = plt.subplots(1, len(files), figsize=(5.5 * len(files), 4.2), squeeze=False)
    for ax, path in zip(axes[0], files):
        with open(path, encoding="utf-8") as handle:
            panel(ax, json.load(handle))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
