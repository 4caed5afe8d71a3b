"""Turn one run's results into the report: targets judged, JSON, a Markdown table, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import kubernetes_burst
from bench.stats import ratio

# The targets of issue 6 (reported, never asserted in CI).
TTR_RATIO = 1.15
BURST_RATIO = 1.25
BURST_N = 50
DRIFT_P50 = 1.5
RSS_AT_N = 200
RSS_MB = 150.0
CPU_PERCENT = 1.0
# The targets of issue 13.
TEARDOWN_RATIO = 1.5
ONCE_RATIO = 1.35


def floor_ttr(results: dict[str, Any], system: dict[str, Any]) -> float | None:
    """The floor's median time to running: the one paired with the system's, else the run's."""
    paired = system.get("time_to_running", {}).get("floor_paired")
    if paired:
        return float(paired["median"])
    median = results.get("floor", {}).get("time_to_running", {}).get("median")
    return None if median is None else float(median)


def floor_burst(results: dict[str, Any], system: dict[str, Any], n: int) -> float | None:
    """The floor's burst total at N: the one run right before the system's, else the best."""
    paired = (system.get("burst", {}).get(str(n)) or {}).get("floor_paired")
    if paired and paired.get("total") is not None:
        return float(paired["total"])
    best = (results.get("floor", {}).get("burst", {}).get(str(n)) or {}).get("best")
    return float(best["total"]) if best else None


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (target, system): what was measured, the limit, met or not."""
    rows: list[dict[str, Any]] = []
    for name, system in results.get("systems", {}).items():
        if system.get("status") == "partial":
            rows.append(
                {
                    "system": name,
                    "target": "(run incomplete)",
                    "measured": None,
                    "met": None,
                    "note": f"stopped early: {system.get('reason', '')}",
                }
            )
        if system.get("status") not in {"measured", "partial"}:
            rows.append(
                {
                    "system": name,
                    "target": "all",
                    "measured": None,
                    "met": None,
                    "note": f"not measured: {system.get('reason', '')}",
                }
            )
            continue
        ttr = system.get("time_to_running", {}).get("median")
        ttr_floor = floor_ttr(results, system)
        ttr_ratio = ratio(ttr, ttr_floor)
        rows.append(
            {
                "system": name,
                "target": f"time to running ≤ {TTR_RATIO}x floor (median)",
                "measured": ttr_ratio,
                "met": None if ttr_ratio is None else ttr_ratio <= TTR_RATIO,
                "note": f"{ttr}s vs floor {ttr_floor}s",
            }
        )
        bursts = system.get("burst", {})
        sizes = [int(n) for n in bursts if floor_burst(results, system, int(n)) is not None]
        if sizes:
            n = BURST_N if BURST_N in sizes else max(sizes)
            total, floor = bursts[str(n)]["total"], floor_burst(results, system, n)
            measured = ratio(total, floor)
            rows.append(
                {
                    "system": name,
                    "target": f"burst total ≤ {BURST_RATIO}x floor at N={BURST_N}",
                    "measured": measured,
                    "met": None if measured is None else measured <= BURST_RATIO,
                    "note": f"N={n}: {total}s vs floor {floor}s",
                }
            )
        drift = system.get("drift", {}).get("p50")
        rows.append(
            {
                "system": name,
                "target": f"drift repair p50 ≤ {DRIFT_P50}s",
                "measured": drift,
                "met": None if drift is None else drift <= DRIFT_P50,
                "note": f"p90 {system.get('drift', {}).get('p90')}s",
            }
        )
        rows += _lifecycle_targets(name, system)
        idle = system.get("idle") or []
        if idle:
            rpm = [row["requests_per_minute"] for row in idle]
            growth = rpm[-1] - rpm[0]
            rows.append(
                {
                    "system": name,
                    "target": "idle Docker requests/min independent of N",
                    "measured": growth,
                    "met": growth <= max(2.0, 0.1 * rpm[0]),
                    "note": ", ".join(f"N={r['n']}: {r['requests_per_minute']}/min" for r in idle),
                }
            )
            last = idle[-1]
            rows.append(
                {
                    "system": name,
                    "target": f"RSS at N={RSS_AT_N} < {RSS_MB:.0f} MB",
                    "measured": last["rss_max_mb"],
                    "met": last["rss_max_mb"] < RSS_MB,
                    "note": f"at N={last['n']}" + ("" if last["n"] == RSS_AT_N else " (quick run)"),
                }
            )
            cpu = max(row["cpu_percent"] for row in idle)
            rows.append(
                {
                    "system": name,
                    "target": f"idle CPU < {CPU_PERCENT}% of a core",
                    "measured": cpu,
                    "met": cpu < CPU_PERCENT,
                    "note": ", ".join(f"N={r['n']}: {r['cpu_percent']}%" for r in idle),
                }
            )
    if results.get("kubernetes"):
        rows += kubernetes_burst.targets(results["kubernetes"])
    return rows


def _lifecycle_targets(name: str, system: dict[str, Any]) -> list[dict[str, Any]]:
    """Teardown and ``--once`` against their floors, failed requests during updates."""
    rows: list[dict[str, Any]] = []

    def against(target: str, limit: float, measured: Any, floor: Any, note: str) -> None:
        value = ratio(measured, floor)
        rows.append(
            {
                "system": name,
                "target": target,
                "measured": value,
                "met": None if value is None else value <= limit,
                "note": f"{note}: {measured}s vs floor {floor}s",
            }
        )

    oneshot = system.get("oneshot") or {}
    if oneshot.get("once"):
        against(
            f"`local --once` ≤ {ONCE_RATIO}x floor (process start to exit)",
            ONCE_RATIO,
            oneshot["once"]["total"],
            oneshot["once_floor"]["total"],
            f"N={oneshot['n']}",
        )
    if oneshot.get("down"):
        against(
            f"`local --down` ≤ {TEARDOWN_RATIO}x floor",
            TEARDOWN_RATIO,
            oneshot["down"]["total"],
            oneshot["down_floor"]["total"],
            f"N={oneshot['n']}",
        )
    teardown = system.get("teardown") or {}
    if teardown.get("floor_paired"):
        what = "operator deletes" if name == "operator" else "manifests removed (pruning)"
        against(
            f"teardown by {what} ≤ {TEARDOWN_RATIO}x floor",
            TEARDOWN_RATIO,
            teardown["total"],
            teardown["floor_paired"]["total"],
            f"N={teardown['n']}",
        )
    updates = system.get("updates") or {}
    if updates.get("reps"):
        rows.append(
            {
                "system": name,
                "target": "requests failed during an update under load: 0",
                "measured": updates["failed"],
                "met": updates["failed"] == 0,
                "note": f"{updates['requests']} requests over {updates['reps']} updates; "
                f"update took {updates['duration'].get('median')}s (median)",
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✅" if value else "❌"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"# mlplatform bench — {results['started']} "
        f"({results['mode']} run, {results['duration']}s)",
        "",
        f"Machine: {machine['cpu']} x {machine['cores']} cores, {machine['memory_gb']} GB RAM, "
        f"{machine['kernel']}, Docker {machine['docker']}, Python {machine['python']}; "
        f"load average {machine['load_before']} before, {machine['load_after']} after; "
        f"{machine['other_containers']} other containers on the engine.",
        "",
        *([results["note"], ""] if results.get("note") else []),
        "## Targets",
        "",
        "| system | target | measured | met | note |",
        "|---|---|---|---|---|",
    ]
    for row in results["targets"]:
        lines.append(
            f"| {row['system']} | {row['target']} | {_cell(row['measured'])} | "
            f"{_cell(row['met'])} | {row['note']} |"
        )
    floor = results.get("floor", {})
    ttr_floor = floor.get("time_to_running", {})
    lines += [
        "",
        "## Time to running, one model (seconds, until GET /health answers)",
        "",
        "Each system's repetitions are paired with floor starts taken right before each one",
        "(same moment, same background load); the ratio is of the medians.",
        "",
        "| system | n | median | p90 | min | max | floor median (paired) | ratio to floor |",
        "|---|---|---|---|---|---|---|---|",
        f"| floor (docker-py) | {ttr_floor.get('n')} | {ttr_floor.get('median')} | "
        f"{ttr_floor.get('p90')} | {ttr_floor.get('min')} | {ttr_floor.get('max')} | — | 1 |",
    ]
    systems = {
        k: v
        for k, v in results.get("systems", {}).items()
        if v.get("status") in {"measured", "partial"}
    }
    for name, system in systems.items():
        s = system.get("time_to_running")
        if not s:
            continue
        paired = floor_ttr(results, system)
        lines.append(
            f"| {name} | {s['n']} | {s['median']} | {s['p90']} | {s['min']} | {s['max']} | "
            f"{_cell(paired)} | {_cell(ratio(s['median'], paired))} |"
        )
    lines += [
        "",
        "Where one start's time goes (medians, seconds from the user's action, from the",
        "counting proxy's log): first Docker request, `POST /containers/create`, `POST .../start`,",
        "HTTP answer; and the Docker requests made per start.",
        "",
        "| system | first request | create | start | answered | requests |",
        "|---|---|---|---|---|---|",
    ]
    named = [("floor (docker-py)", ttr_floor)]
    for name, system in systems.items():
        named.append((name, system.get("time_to_running", {})))
        if system.get("time_to_running", {}).get("floor_paired"):
            named.append((f"floor paired with {name}", system["time_to_running"]["floor_paired"]))
    for name, entry in named:
        medians = entry.get("phases", {}).get("median", {})
        if medians:
            cells = [medians.get(k) for k in ("first_request", "create", "start", "answered")]
            cells.append(medians.get("requests"))
            lines.append(f"| {name} | " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "## Burst: N models at once (total seconds until all answer; per-model p50/p90)",
        "",
        "Each system's burst is paired with a floor burst of the same N (at the floor's best",
        "concurrency) taken right before it; the ratio is to that paired floor.",
        "",
        "| N | system | total | p50 | p90 | ratio to floor | note |",
        "|---|---|---|---|---|---|---|",
    ]
    sizes = sorted(
        {int(n) for n in floor.get("burst", {})}
        | {int(n) for s in systems.values() for n in s.get("burst", {})}
    )
    for n in sizes:
        entry = floor.get("burst", {}).get(str(n)) or {}
        best = entry.get("best")
        if best:
            tries = ", ".join(f"T={t['threads']}: {t['total']}" for t in entry["tries"])
            lines.append(
                f"| {n} | floor | {best['total']} | {best['per_model']['p50']} | "
                f"{best['per_model']['p90']} | 1 | best of {tries} |"
            )
        for name, system in systems.items():
            b = system.get("burst", {}).get(str(n))
            if b:
                lines.append(
                    f"| {n} | {name} | {b['total']} | {b['per_model']['p50']} | "
                    f"{b['per_model']['p90']} | "
                    f"{_cell(ratio(b['total'], floor_burst(results, system, n)))} | "
                    f"paired floor {_cell(floor_burst(results, system, n))}s "
                    f"(T={(b.get('floor_paired') or {}).get('threads')}); "
                    f"teardown {b['teardown']}s |"
                )
    lines += [
        "",
        "## Drift repair: `docker kill` until the replacement answers (seconds)",
        "",
        "| system | n | p50 | p90 | min | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, system in systems.items():
        d = system.get("drift")
        if not d:
            continue
        lines.append(f"| {name} | {d['n']} | {d['p50']} | {d['p90']} | {d['min']} | {d['max']} |")
    lines += _lifecycle_tables(systems)
    lines += [
        "",
        "## Idle cost with N models converged",
        "",
        "| system | N | window s | RSS MB (max) | CPU % of a core | Docker requests/min "
        "| threads |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, system in systems.items():
        for row in system.get("idle", []):
            lines.append(
                f"| {name} | {row['n']} | {row['window']} | {row['rss_mb']} ({row['rss_max_mb']})"
                f" | {row['cpu_percent']} | {row['requests_per_minute']} | {row['threads']} |"
            )
    for name, system in systems.items():
        for row in system.get("idle", []):
            if row["request_kinds"]:
                kinds = ", ".join(f"`{k}` x{v}" for k, v in row["request_kinds"].items())
                lines.append(f"\n{name}, N={row['n']}: {kinds}")
    for name, system in results.get("systems", {}).items():
        if system.get("status") != "measured":
            lines.append(f"\n**{name}: {system.get('status')}** — {system.get('reason', '')}")
        elif system.get("warm_up") is not None:
            lines.append(f"\n{name}: process start to first model answering {system['warm_up']}s.")
    lines += _kubernetes_section(results)
    lines.append("")
    return "\n".join(lines)


def _kubernetes_section(results: dict[str, Any]) -> list[str]:
    """The Kubernetes runner's own report, one heading level down (its targets are in the
    table of targets too)."""
    if not results.get("kubernetes"):
        return []
    section = kubernetes_burst.render(results["kubernetes"]).replace("\n# ", "\n## ")
    return ["", "#" + section.rstrip("\n")]


def _lifecycle_tables(systems: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## One-shot and teardown (seconds; models whose servers ignore SIGTERM, 10 s grace)",
        "",
        "| system | what | N | seconds | floor | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, system in systems.items():
        oneshot = system.get("oneshot") or {}
        for key, floor_key, what in (
            ("once", "once_floor", "`local --once`, process start to exit"),
            ("down", "down_floor", "`local --down`, process start to exit"),
        ):
            if oneshot.get(key):
                measured, floor = oneshot[key]["total"], oneshot[floor_key]["total"]
                lines.append(
                    f"| {name} | {what} | {oneshot['n']} | {measured} | {floor} | "
                    f"{_cell(ratio(measured, floor))} |"
                )
        if oneshot.get("reason"):
            lines.append(f"| {name} | one-shot not measured: {oneshot['reason']} | | | | |")
        teardown = system.get("teardown") or {}
        if teardown:
            floor = (teardown.get("floor_paired") or {}).get("total")
            lines.append(
                f"| {name} | teardown (removed as a user would) | {teardown['n']} | "
                f"{teardown['total']} | {_cell(floor)} | {_cell(ratio(teardown['total'], floor))} |"
            )
    lines += [
        "",
        "## Updates under load (an env change; a client requesting the stable endpoint 20/s)",
        "",
        "| system | updates | requests | failed | update seconds (median, max) |",
        "|---|---|---|---|---|",
    ]
    for name, system in systems.items():
        updates = system.get("updates") or {}
        if updates.get("reps"):
            duration = updates["duration"]
            lines.append(
                f"| {name} | {updates['reps']} | {updates['requests']} | {updates['failed']} | "
                f"{duration.get('median')}, {duration.get('max')} |"
            )
    return lines


def plots(results: dict[str, Any], folder: Path) -> list[str]:
    """cost-curves.png: burst total vs N, RSS vs N, Docker requests/min vs N."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    figure, (burst_ax, rss_ax, rpm_ax) = plt.subplots(1, 3, figsize=(15, 4.5))
    floor = results.get("floor", {}).get("burst", {})
    points = sorted((int(n), e["best"]["total"]) for n, e in floor.items() if e.get("best"))
    if points:
        burst_ax.plot(*zip(*points, strict=True), "k--o", label="floor (docker-py)")
    for name, system in results.get("systems", {}).items():
        if system.get("status") not in {"measured", "partial"}:
            continue
        points = sorted((int(n), b["total"]) for n, b in system.get("burst", {}).items())
        if points:
            burst_ax.plot(*zip(*points, strict=True), "-o", label=name)
        idle = system.get("idle") or []
        if idle:
            rss_ax.plot([r["n"] for r in idle], [r["rss_max_mb"] for r in idle], "-o", label=name)
            rpm_ax.plot(
                [r["n"] for r in idle], [r["requests_per_minute"] for r in idle], "-o", label=name
            )
    burst_ax.set(title="Burst: time until all N answer", xlabel="N models", ylabel="seconds")
    rss_ax.set(title="Idle RSS with N models", xlabel="N models", ylabel="MB")
    rss_ax.axhline(RSS_MB, color="red", linestyle=":", label=f"target {RSS_MB:.0f} MB")
    rpm_ax.set(title="Idle Docker API requests", xlabel="N models", ylabel="requests / minute")
    for ax in (burst_ax, rss_ax, rpm_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(folder / "cost-curves.png", dpi=100)
    plt.close(figure)
    return ["cost-curves.png"]


def write(results: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    results["targets"] = judge(results)
    results["plots"] = plots(results, folder)
    (folder / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (folder / "results.md").write_text(markdown(results))


def main() -> None:
    """Re-render a results folder from its ``results.json``: ``python -m bench.report DIR``."""
    import sys

    folder = Path(sys.argv[1])
    write(json.loads((folder / "results.json").read_text()), folder)
    print((folder / "results.md").read_text())


if __name__ == "__main__":
    main()
