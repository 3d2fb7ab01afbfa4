#!/usr/bin/env python3
"""Draws benches/results/vs_tigervnc.png from the CSV that `cargo bench --bench vs_tigervnc`
writes: per setting and scenario, kvnc's bytes and server CPU as a ratio of TigerVNC's (below 1:
kvnc costs less), and prints the same figures as a Markdown table (README's "Performance").
Needs matplotlib (`pip install matplotlib`).

    python3 benches/plot_vs_tigervnc.py
"""
import csv
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SCENARIOS = ["first", "steady", "typed"]


def main():
    rows = list(csv.DictReader(open(RESULTS / "vs_tigervnc.csv")))
    figures = {(r["server"], r["setting"], r["scenario"]): r for r in rows}
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(13, 6), sharey=True)
    for ax, (column, title) in zip(
        axes, [("bytes_per_update", "bytes per update"), ("server_cpu_ms_per_update", "server CPU per update")]
    ):
        height = 0.8 / len(SCENARIOS)
        for i, scenario in enumerate(SCENARIOS):
            ratios = []
            for setting in settings:
                kvnc, tiger = figures.get(("kvnc", setting, scenario)), figures.get(("TigerVNC", setting, scenario))
                ratio = float(kvnc[column]) / float(tiger[column]) if kvnc and tiger and float(tiger[column]) else 0
                ratios.append(ratio)
            ys = [y + i * height for y in range(len(settings))]
            bars = ax.barh(ys, ratios, height=height, label=scenario)
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.axvline(0.5, color="grey", linewidth=0.6, linestyle="--")
        ax.set_title(f"kvnc / TigerVNC: {title}")
        ax.set_xlabel("ratio (below 1: kvnc costs less)")
        ax.set_yticks([y + height for y in range(len(settings))])
        ax.set_yticklabels(settings, fontsize=8)
        ax.invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(SCENARIOS))
    fig.suptitle("kvnc vs TigerVNC Xvnc 1.12, same 1280x720 frames (cargo bench --bench vs_tigervnc)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(RESULTS / "vs_tigervnc.png", dpi=90)
    print_table(figures, settings)


def print_table(figures, settings):
    print("| setting | scenario | bytes kvnc / TigerVNC | ratio | CPU ms kvnc / TigerVNC | ratio | kvnc frame-in ms |")
    print("|---|---|---|---|---|---|---|")
    for setting in settings:
        for scenario in SCENARIOS:
            kvnc, tiger = figures.get(("kvnc", setting, scenario)), figures.get(("TigerVNC", setting, scenario))
            if not kvnc or not tiger:
                continue
            kb, tb = float(kvnc["bytes_per_update"]), float(tiger["bytes_per_update"])
            kc, tc = float(kvnc["server_cpu_ms_per_update"]), float(tiger["server_cpu_ms_per_update"])
            arrival = kvnc.get("frame_in_cpu_ms_per_update") or "0"
            arrival = f"{float(arrival):.2f}" if float(arrival) > 0 else "-"
            print(
                f"| {setting} | {scenario} | {kb:.0f} / {tb:.0f} | {kb / tb:.2f} | {kc:.2f} / {tc:.2f} | {kc / tc:.2f} | {arrival} |"
            )


if __name__ == "__main__":
    main()
