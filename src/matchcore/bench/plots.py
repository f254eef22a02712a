"""PNG charts of a benchmark result (matplotlib, imported only here)."""
from __future__ import annotations

from pathlib import Path


def _plt():
    from matchcore.replay_plots import _pyplot

    return _pyplot("benchmark charts")


def _hdr_axes(ax, max_pct):
    import numpy as np

    ax.set_xscale("log")
    ticks = [1, 2, 10, 100, 1_000, 10_000, 100_000, 1_000_000]
    labels = ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    top = 1.0 / max(1.0 - max_pct / 100.0, 1e-7)
    keep = [i for i, t in enumerate(ticks) if t <= top * 1.01]
    ax.set_xticks([ticks[i] for i in keep])
    ax.set_xticklabels([labels[i] for i in keep])
    ax.set_xlabel("percentile")
    ax.set_yscale("log")
    ax.set_ylabel("ns")
    ax.grid(True, which="both", alpha=0.3)
    return np


def plot_all(res: dict, out_dir) -> list[Path]:
    """Write every chart the result has data for into ``out_dir``; returns the paths.

    ``latency_percentiles.png`` (HDR-style, closed and open loop per workload),
    ``rate_sweep.png``, ``scaling_resting.png``, ``scaling_levels.png``. Every figure it opens
    is closed, also when a chart fails (a full disk): pyplot kept it, and its memory."""
    plt = _plt()
    opened = set(plt.get_fignums())
    try:
        return _charts(plt, res, out_dir)
    finally:
        for num in set(plt.get_fignums()) - opened:
            plt.close(num)


def _charts(plt, res: dict, out_dir) -> list[Path]:
    from matchcore.replay_plots import save_figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = res["machine"]["cpu"]
    written = []

    wl = {k: v for k, v in (res.get("workloads") or {}).items() if "skipped" not in v}
    if wl:
        fig, ax = plt.subplots(figsize=(8, 5))
        max_pct = 0.0
        for i, (name, r) in enumerate(wl.items()):
            color = f"C{i}"
            for key, style, label in ((r["closed"]["hdr"], "-", "closed"),
                                      (r["open"]["latency"]["hdr"], "--", "open")):
                pts = [(q, v) for q, v in zip(key["percentile"], key["value_ns"]) if q < 100.0]
                if not pts:
                    continue
                x = [1.0 / (1.0 - q / 100.0) for q, _ in pts]
                ax.plot(x, [v for _, v in pts], style, color=color, label=f"{name} ({label})")
                if key["percentile"][-1] >= 100.0:      # the max, just right of the curve
                    ax.plot([2.0 * x[-1]], [key["value_ns"][-1]], "v", color=color, ms=5)
                max_pct = max(max_pct, pts[-1][0])
        ax.plot([], [], "v", color="grey", ms=5, label="max (right of each curve)")
        _hdr_axes(ax, max_pct)
        ax.set_title(f"matchcore latency per message (in compiled loop)\n{machine}", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out_dir / "latency_percentiles.png"
        save_figure(fig, p, dpi=110)
        plt.close(fig)
        written.append(p)

    rs = res.get("rate_sweep")
    if rs:
        fig, ax = plt.subplots(figsize=(8, 5))
        rates = [r["rate_per_s"] / 1e6 for r in rs["points"]]
        for key, style in (("p50", "o-"), ("p99", "s-"), ("p99.9", "^-"), ("max", "x:")):
            ax.plot(rates, [r["latency"][key] for r in rs["points"]], style, label=key)
        ax.axvline(rs["capacity_per_s"] / 1e6, color="grey", ls="--", lw=1,
                   label="closed-loop capacity")
        ax.set_yscale("log")
        ax.set_xlabel("offered rate (M messages/s)")
        ax.set_ylabel("latency from scheduled arrival (ns)")
        ax.set_title(f"open-loop rate sweep, {rs['workload']} mix\n{machine}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out_dir / "rate_sweep.png"
        save_figure(fig, p, dpi=110)
        plt.close(fig)
        written.append(p)

    sc = res.get("scaling")
    if sc:
        for key, xlabel in (("resting", "resting orders"), ("levels", "price levels (active)")):
            rows = sc.get(key) or []
            if not rows:
                continue
            fig, ax = plt.subplots(figsize=(8, 5))
            variants = sorted({r["variant"] for r in rows})
            for i, v in enumerate(variants):
                pts = [r for r in rows if r["variant"] == v]
                xs = [r["param"] for r in pts]
                ax.plot(xs, [r["ns_per_msg"] for r in pts], "o-", color=f"C{i}",
                        label=f"{v}: median chunk (batch)")
                ax.plot(xs, [r["p99"] for r in pts], "s--", color=f"C{i}", alpha=0.6,
                        label=f"{v}: p99 (timed)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("ns per message")
            ax.set_title(f"per-message cost vs {xlabel}, standard mix\n{machine}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            p = out_dir / f"scaling_{key}.png"
            save_figure(fig, p, dpi=110)
            plt.close(fig)
            written.append(p)
    return written
