"""results.md (tables, every figure with its ratio to a reference) and the PNG plots."""

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

# The targets (issue 18), for what `make up` ships: fan-out as a multiple of the floor's p50
# time-to-member at that size, handshakes as a share of the floor's rate.
GOALS = {
    "fanout": {2000: 2.0, 5000: 2.5},
    "kib_per_socket": 30,
    "push_p99_ms": 10,
    "handshakes": 0.8,
}


def ratio(value, reference):
    if value is None or not reference:
        return "–"
    return f"{value / reference:.2f}×"


def cell(value):
    return "–" if value is None else f"{value:g}"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def shipped(results):
    """The target that is what `make up` ships: the fast path on, when it was measured."""
    return "tuned+fast" if "tuned+fast" in results["targets"] else "tuned"


def goals_table(results):
    tuned, floor = shipped(results), "floor"
    rows = [f"| goal | {tuned} | reference | ratio | |", "|---|---:|---:|---:|---|"]
    # Sizes are ints when measured, strings when read back from results.json.
    fan = {
        name: {int(n): row for n, row in rows.items()}
        for name, rows in results["fanout_ws"].items()
    }
    for size, goal in GOALS["fanout"].items():
        if size not in fan[tuned]:
            continue  # a --quick run
        value, reference = fan[tuned][size]["member_p50_ms"], fan[floor][size]["member_p50_ms"]
        rows.append(
            f"| fan-out to {size:,} members (WS), p50 time-to-member ≤ {goal}× floor "
            f"| {cell(value)} ms | {cell(reference)} ms (floor) | {ratio(value, reference)} "
            f"| {verdict(value is not None and value <= goal * reference)} |"
        )
    top = results["capacity"][tuned][-1]
    floor_top = results["capacity"][floor][-1]
    rows.append(
        f"| {top['attempted']:,} sockets through nginx, 0 failures "
        f"| {top['failures']} failures | {floor_top['failures']} (floor) | – "
        f"| {verdict(top['failures'] == 0)} |"
    )
    rows.append(
        f"| fan-out to all {top['held']:,} members: measured, 0 lost "
        f"| {cell(top['fan_out']['member_p50_ms'])} ms p50, {top['fan_out']['missing']} lost "
        f"| {cell(floor_top['fan_out']['member_p50_ms'])} ms (floor) "
        f"| {ratio(top['fan_out']['member_p50_ms'], floor_top['fan_out']['member_p50_ms'])} "
        f"| {verdict(top['fan_out']['missing'] == 0)} |"
    )
    kib = top["ws_kib_per_socket"]
    rows.append(
        f"| ≤ {GOALS['kib_per_socket']} KiB RSS per socket in the WS tier | {cell(kib)} KiB "
        f"| {cell(floor_top['ws_kib_per_socket'])} KiB (floor) "
        f"| {ratio(kib, floor_top['ws_kib_per_socket'])} "
        f"| {verdict(kib is not None and kib <= GOALS['kib_per_socket'])} |"
    )
    push = results["push"]
    rows.append(
        f"| push p99 ≤ {GOALS['push_p99_ms']} ms at {push[tuned]['rate']}/s "
        f"| {cell(push[tuned]['p99_ms'])} ms | {cell(push[floor]['p99_ms'])} ms (floor) "
        f"| {ratio(push[tuned]['p99_ms'], push[floor]['p99_ms'])} "
        f"| {verdict(push[tuned]['p99_ms'] is not None and push[tuned]['p99_ms'] <= 10)} |"
    )
    shakes = results["handshakes"]
    value, reference = shakes[tuned]["per_second"], shakes[floor]["per_second"]
    rows.append(
        f"| handshakes/s through nginx ≥ {GOALS['handshakes']}× floor "
        f"| {value:,}/s | {reference:,}/s (floor) | {ratio(value, reference)} "
        f"| {verdict(value >= GOALS['handshakes'] * reference)} |"
    )
    return rows


def fan_out_table(fan):
    rows = [
        "| members | target | time-to-member p50 | p99 | time-to-last p50 | p99 "
        "| lost / failed handshakes | p50 × floor | last p50 × floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in fan["floor"]:
        floor = fan["floor"][size]
        for name in fan:
            row = fan[name][size]
            rows.append(
                f"| {int(size):,} | {name} | {cell(row['member_p50_ms'])} ms "
                f"| {cell(row['member_p99_ms'])} ms | {cell(row['last_p50_ms'])} ms "
                f"| {cell(row['last_p99_ms'])} ms | {row['missing']} / {row['open_failures']} "
                f"| {ratio(row['member_p50_ms'], floor['member_p50_ms'])} "
                f"| {ratio(row['last_p50_ms'], floor['last_p50_ms'])} |"
            )
    return rows


def write(results, out):
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Run of `make bench` on {m['date']}: {m['nproc']} cores ({m['cpu']}), "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, nginx {m['nginx']}; "
        f"load average before the run {' / '.join(m['load_before'])}; the load client on the "
        f"same machine; {results['seconds']} s in all. How it is measured: "
        "[README.md](README.md).",
        "",
        "Targets, each behind the same nginx configuration:",
        "",
        *(f"- **{name}**: {text}" for name, text in results["targets"].items()),
        "",
        "## Goals",
        "",
        *goals_table(results),
        "",
        "## Fan-out, WS-triggered (a member posts to a chat room; stored, then broadcast)",
        "",
        *fan_out_table(results["fanout_ws"]),
        "",
        "## Fan-out, HTTP-triggered (POST /api/notifications/ to a user with N sockets)",
        "",
        *fan_out_table(results["fanout_http"]),
        "",
        "![fan-out latency vs members](fanout.png)",
        "",
        "## Push latency (POST /api/notifications/ → arrival; row stored, pushed on commit)",
        "",
        "| target | rate | p50 | p99 | lost | p99 × floor | p99 × article |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    push = results["push"]
    for name, row in push.items():
        lines.append(
            f"| {name} | {row['rate']}/s | {cell(row['p50_ms'])} ms | {cell(row['p99_ms'])} ms "
            f"| {row['lost']} | {ratio(row['p99_ms'], push['floor']['p99_ms'])} "
            f"| {ratio(row['p99_ms'], push['article']['p99_ms'])} |"
        )
    shakes, http = results["handshakes"], results["http"]
    lines += [
        "",
        "## Handshakes through nginx (open, then drop; /ws/echo/)",
        "",
        "First the floor alone, with more and more client processes (32 handshakes in "
        "flight each): while its rate rises, the client was the limit. Every target is "
        "then measured with the count where the floor's rate was highest.",
        "",
        "| client processes | floor handshakes/s | failures |",
        "|---:|---:|---:|",
        *(
            f"| {row['processes']} | {row['per_second']:,} | {row['failures']} |"
            for row in results["handshake_floor"]
        ),
        "",
        "| target | handshakes/s | failures | × floor | × article |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {row['per_second']:,} | {row['failures']} "
            f"| {ratio(row['per_second'], shakes['floor']['per_second'])} "
            f"| {ratio(row['per_second'], shakes['article']['per_second'])} |"
            for name, row in shakes.items()
        ),
        "",
        "## HTTP requests/s through nginx (wrk, 2 threads, 32 connections)",
        "",
        "The stacks: `GET /healthz` (gunicorn, one database and one Redis query); the floor: "
        "a static file served by nginx itself.",
        "",
        "| target | path | requests/s | p99 | non-2xx | × article |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {name} | `{row['path']}` | {row['per_second']:,} | {row['p99']} "
            f"| {row['non_2xx']} | {ratio(row['per_second'], http['article']['per_second'])} |"
            for name, row in http.items()
        ),
        "",
        "## Capacity (sockets held in one chat room, through nginx)",
        "",
        "KiB/socket: RSS growth since the previous step / sockets added since then.",
        "",
        "| target | attempted | held | failures | WS tier RSS | KiB/socket | nginx workers RSS "
        "| KiB/socket |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in results["capacity"].items():
        for row in rows:
            lines.append(
                f"| {name} | {row['attempted']:,} | {row['held']:,} | {row['failures']} "
                f"| {row['ws_rss_mib']} MiB | {cell(row['ws_kib_per_socket'])} "
                f"| {row['nginx_rss_mib']} MiB | {cell(row['nginx_kib_per_socket'])} |"
            )
    lines += ["", "![memory vs sockets](memory.png)", ""]
    lines += capacity_fan_out_table(results["capacity"])
    lines += ["", "Profile: [profile.md](profile.md).", ""]
    (out / "results.md").write_text("\n".join(lines))
    plot_fan_out(results, out / "fanout.png")
    plot_memory(results, out / "memory.png")


def capacity_fan_out_table(capacity):
    """The fan-out to every socket the capacity step held (20,000 in a full run)."""
    floor = capacity["floor"][-1]["fan_out"]
    lines = [
        f"## Fan-out to every socket held ({capacity['floor'][-1]['attempted']:,} members, "
        "WS-triggered)",
        "",
        "| target | members | time-to-member p50 | p99 | time-to-last p50 | lost "
        "| p50 × floor | last p50 × floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in capacity.items():
        row = rows[-1]["fan_out"]
        lines.append(
            f"| {name} | {rows[-1]['held']:,} | {cell(row['member_p50_ms'])} ms "
            f"| {cell(row['member_p99_ms'])} ms | {cell(row['last_p50_ms'])} ms "
            f"| {row['missing']} | {ratio(row['member_p50_ms'], floor['member_p50_ms'])} "
            f"| {ratio(row['last_p50_ms'], floor['last_p50_ms'])} |"
        )
    return lines


def plot_fan_out(results, path):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, key, title in (
        (axes[0], "fanout_ws", "WS-triggered (chat room)"),
        (axes[1], "fanout_http", "HTTP-triggered (POST /api/notifications/)"),
    ):
        for name, rows in results[key].items():
            sizes = [int(size) for size in rows]
            (line,) = axis.plot(
                sizes, [rows[s]["member_p50_ms"] for s in rows], marker="o", label=f"{name} p50"
            )
            axis.plot(
                sizes,
                [rows[s]["last_p50_ms"] for s in rows],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{name} last member",
            )
        axis.set_title(title)
        axis.set_xlabel("room members")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("ms from send to arrival")
    axes[1].legend(fontsize=8)
    figure.suptitle("Fan-out latency vs room size (lower is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_memory(results, path):
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, rows in results["capacity"].items():
        held = [row["held"] for row in rows]
        (line,) = axis.plot(held, [row["ws_rss_mib"] for row in rows], marker="o", label=name)
        axis.plot(
            held,
            [row["nginx_rss_mib"] for row in rows],
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} nginx workers",
        )
    axis.set_xlabel("sockets held")
    axis.set_ylabel("RSS, MiB (websocket tier; dashed: nginx)")
    axis.set_title("Memory vs open sockets")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
