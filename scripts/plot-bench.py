"""Throughput against p99 latency, one line per workload and system, from
the JSON reports `mectl load --json` writes (scripts/bench-cluster)."""
import json
import pathlib
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

SERIES = [
    ("mix-", "MatchEngine: exchange-core mix (open loop)", "tab:blue", "o"),
    ("batch100-", "MatchEngine: batches of 100 orders (open loop)", "tab:cyan", "s"),
    ("me-put-", "MatchEngine: KV put", "tab:green", "^"),
    ("etcd-put-", "etcd: KV put", "tab:red", "^"),
    ("me-get-", "MatchEngine: KV get (linearizable)", "tab:olive", "v"),
    ("etcd-get-", "etcd: KV get (linearizable)", "tab:orange", "v"),
]


def order_key(name):
    number = re.findall(r"\d+", name)
    return int(number[-1]) if number else 0


def main(json_dir, png):
    reports = [json.loads(p.read_text()) for p in pathlib.Path(json_dir).glob("*.json")]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for prefix, label, color, marker in SERIES:
        points = sorted((r for r in reports if r["run"].startswith(prefix)), key=lambda r: order_key(r["run"]))
        if not points:
            continue
        ax.plot(
            [r["commands_per_s"] for r in points],
            [r["latency_us_p99"] / 1000 for r in points],
            label=label,
            color=color,
            marker=marker,
        )
    ax.axhline(10, color="grey", linestyle="--", linewidth=1)
    ax.text(ax.get_xlim()[0], 10.5, "p99 = 10 ms", color="grey", fontsize=8)
    ax.set_yscale("log")
    ticks = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("commands committed and acknowledged per second")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title("3 nodes on loopback, fsync on, 2 vCPU (nodes and load generator share them)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
