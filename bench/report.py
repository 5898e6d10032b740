#!/usr/bin/env python3
"""Turns hack/bench.sh's results (bench/results/*.json) into docs/benchmarks.md and its
plots. Every number in the report comes from those files; the hand-written analysis of
what the profiles showed lives in bench/analysis.md and is included as it is."""

import argparse
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(results, name):
    path = os.path.join(results, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def ms(x):
    return f"{x:.2f}"


def verdict(ok):
    return "met" if ok else "**missed**"


class Report:
    def __init__(self, results, plots, report_dir):
        self.results = results
        self.lines = []
        self.goals = []
        self.plots = plots
        self.report_dir = report_dir

    def add(self, *lines):
        self.lines.extend(lines)

    def goal(self, text, measured, ok):
        self.goals.append(f"| {text} | {measured} | {verdict(ok)} |")

    def plot(self, fig, name, caption):
        path = os.path.join(self.plots, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        rel = os.path.relpath(path, self.report_dir)
        self.add("", f"![{caption}]({rel})", "")


def edge(r, data):
    targets = data["targets"]
    r.add("## Edge overhead", "",
          "The auth service's JWKS document (small, no database) called directly, through "
          "Agora's gateway, and through nginx as a plain reverse proxy (keepalive upstream, "
          f"access log off, 2 workers). Maximum throughput with {data['connections']} "
          f"connections (closed loop); latencies at a constant {data['rate']:.0f} req/s "
          "(open loop, from the intended send time).", "",
          "| target | max req/s | p50 ms | p99 ms | p99.9 ms | errors |",
          "|---|---:|---:|---:|---:|---:|")
    for name, t in targets.items():
        lat = t["fixed_rate"]["latency_ms"]
        errors = t["max"]["errors"] + t["fixed_rate"]["errors"]
        r.add(f"| {name} | {t['max']['achieved_rate']:.0f} | {ms(lat['p50'])} | "
              f"{ms(lat['p99'])} | {ms(lat['p999'])} | {errors} |")
    if all(k in targets for k in ("direct", "gateway", "nginx")):
        g, n, d = targets["gateway"], targets["nginx"], targets["direct"]
        vs_nginx = g["max"]["achieved_rate"] / n["max"]["achieved_rate"]
        vs_direct = g["max"]["achieved_rate"] / d["max"]["achieved_rate"]
        overhead = g["fixed_rate"]["latency_ms"]["p99"] - d["fixed_rate"]["latency_ms"]["p99"]
        r.add("", f"Gateway/nginx throughput: **{vs_nginx:.2f}**; gateway/direct: "
              f"**{vs_direct:.2f}**; gateway p99 overhead over direct: **{overhead:.2f} ms**.")
        if g.get("max_rounds") and n.get("max_rounds"):
            r.add("", f"The maxima were measured in {len(g['max_rounds'])} rounds, the three "
                  "targets in turn; gateway/nginx in each round: "
                  + ", ".join(f"{a / b:.2f}" for a, b in zip(g["max_rounds"], n["max_rounds"]))
                  + ".")
        cpu = {k: t.get("cpu_us_per_request", {}) for k, t in targets.items()}
        if cpu["direct"].get("agora") and cpu["gateway"].get("agora") and cpu["nginx"].get("nginx"):
            # The gateway's own share: agora's CPU per request through it, less what the
            # auth service alone costs per request (the direct target's).
            gw_us = cpu["gateway"]["agora"] - cpu["direct"]["agora"]
            ng_us = cpu["nginx"]["nginx"]
            r.add("", "CPU time per proxied request at the maximum (`/proc`, over the same "
                  f"turns): the gateway **{gw_us:.1f} µs** (agora's "
                  f"{cpu['gateway']['agora']:.1f} µs through it less the auth service's "
                  f"{cpu['direct']['agora']:.1f} µs when called directly), nginx "
                  f"**{ng_us:.1f} µs**.")
            r.goal("Gateway CPU per proxied request ≤ nginx's", f"{gw_us:.0f} vs {ng_us:.0f} µs",
                   gw_us <= ng_us)
        r.goal("Gateway throughput ≥ nginx's", f"{vs_nginx:.2f}×", vs_nginx >= 1.0)
        r.goal("Gateway p99 overhead ≤ 1 ms over direct", f"{overhead:.2f} ms", overhead <= 1.0)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(targets)
    width = 0.25
    for i, q in enumerate(("p50", "p99", "p999")):
        ax.bar([x + i * width for x in range(len(names))],
               [targets[n]["fixed_rate"]["latency_ms"][q] for n in names], width,
               label=q.replace("p999", "p99.9"))
    ax.set_xticks([x + width for x in range(len(names))], names)
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"Edge latency at {data['rate']:.0f} req/s")
    ax.legend()
    r.plot(fig, "edge-latency.png", "Edge latency by target")


def mix(r, data, sql):
    steps = data["steps"]
    r.add("## Social mix", "",
          "DeathStarBench's shape: 60% `GET /feed`, 30% `GET /users/{id}/posts`, 10% "
          f"`POST /posts` (pages of 10), by random people of an `agora seed` platform "
          f"({data['users']} people, power-law followers), at rising constant rates until "
          f"p99 passes {data['p99_limit_ms']:.0f} ms or a request fails.", "",
          "| offered req/s | achieved | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |",
          "|---:|---:|---:|---:|---:|---:|---:|")
    for s in steps:
        lat = s["latency_ms"]
        r.add(f"| {s['offered_rate']:.0f} | {s['achieved_rate']:.0f} | {ms(lat['p50'])} | "
              f"{ms(lat['p90'])} | {ms(lat['p99'])} | {ms(lat['p999'])} | {s['errors']} |")
    best = data.get("best_rate")
    r.add("", f"Highest rate with p99 under {data['p99_limit_ms']:.0f} ms and no error: "
          f"**{best or 0:.0f} req/s**.")
    r.goal("Social mix ≥ 1,500 req/s with p99 < 50 ms", f"{best or 0:.0f} req/s",
           (best or 0) >= 1500)
    if sql and sql["mix"]["tps"]:
        # The same run's limit: the mix's own SQL (2:1 feed:user timeline) by pgbench.
        share = (best or 0) / sql["mix"]["tps"]
        r.add("", f"Best rate against the same run's pgbench limit for the mix's SQL: "
              f"**{share:.2f}**.")
        r.goal("Social mix's best rate ≥ 0.6 of the same run's pgbench limit",
               f"{best or 0:.0f} / {sql['mix']['tps']:.0f} = {share:.2f}", share >= 0.6)
    if sql:
        feed_max = data["feed_max"]["achieved_rate"]
        ratio = sql["feed"]["tps"] / feed_max if feed_max else float("inf")
        r.add("", "The physical limit on this machine: the users service's own feed and "
              "user-timeline SQL run by pgbench (prepared, "
              f"{sql['clients']} clients) straight against the same PostgreSQL, with each "
              f"person's followees and friends as parameters ({sql['people']} people):", "",
              "| | req/s | mean latency ms |", "|---|---:|---:|",
              f"| SQL, 2:1 feed:user timeline | {sql['mix']['tps']:.0f} | {ms(sql['mix']['latency_ms'])} |",
              f"| SQL, feed only | {sql['feed']['tps']:.0f} | {ms(sql['feed']['latency_ms'])} |",
              f"| `GET /feed` alone, max (16 connections) | {feed_max:.0f} | "
              f"{ms(data['feed_max']['latency_ms']['mean'])} |", "",
              f"Feed endpoint vs its raw SQL: **{ratio:.2f}×** slower (the endpoint also "
              "asks the relations service for the follow graph and verifies the token).")
        r.goal("Feed endpoint within 3× of its raw SQL", f"{ratio:.2f}×", ratio <= 3.0)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rates = [s["offered_rate"] for s in steps]
    for q, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
        ax.plot(rates, [s["latency_ms"][q] for s in steps], marker="o", label=label)
    ax.axhline(data["p99_limit_ms"], color="grey", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("offered load (req/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Social mix: latency vs offered load")
    ax.legend()
    r.plot(fig, "mix-latency.png", "Social mix latency vs offered load")


def feed(r, data):
    callers = data["callers"]
    r.add("## Feed at scale", "",
          f"Callers following {', '.join(n.split('_')[-1] for n in callers)} of "
          f"{data['authors']:,} authors of {data['posts']:,} bulk-loaded posts (public, every "
          "tenth for friends only, one a second back in time); `GET /feed?limit=10` at a "
          f"constant {data['rate']:.0f} req/s per caller.", "",
          "| followees | p50 ms | p99 ms | p99.9 ms | errors |", "|---:|---:|---:|---:|---:|")
    points = []
    for name, run in callers.items():
        k = int(name.split("_")[-1])
        lat = run["latency_ms"]
        points.append((k, lat["p50"], lat["p99"]))
        r.add(f"| {k} | {ms(lat['p50'])} | {ms(lat['p99'])} | {ms(lat['p999'])} | {run['errors']} |")
    points.sort()
    # Earlier designs' runs, kept for the comparison: only the per-author index (before
    # users migration 2026-12-05), then the newest-first walk for every caller.
    before = load(r.results, "feed-before-recent-index")
    walk = load(r.results, "feed-before-hybrid")
    if before and walk:
        r.add("", "The design, run by run. *Per-author index only*: PostgreSQL fetched every "
              "post of every followee and sorted them. *Newest-first walk*: the index "
              "`posts_recent_idx` lets a caller's feed walk the newest posts and stop at the "
              "page size, which is cheap when the followees wrote many of them and slow when "
              "they are a few of many authors. *Now*: up to 32 followees read each one's "
              "newest posts from the per-author index and keep the newest; more walk.", "",
              "| followees | per-author index only p50 / p99 ms | newest-first walk p50 / p99 ms "
              "| now p50 / p99 ms |",
              "|---:|---:|---:|---:|")
        after = {int(n.split("_")[-1]): run["latency_ms"] for n, run in callers.items()}
        walked = {int(n.split("_")[-1]): run["latency_ms"] for n, run in walk["callers"].items()}
        pair = lambda lat: f"{ms(lat['p50'])} / {ms(lat['p99'])}" if lat else "–"  # noqa: E731
        for name, run in before["callers"].items():
            k = int(name.split("_")[-1])
            failed = f" ({run['errors']} failed)" if run["errors"] else ""
            r.add(f"| {k} | {pair(run['latency_ms'])}{failed} | {pair(walked.get(k))} | "
                  f"{pair(after.get(k))} |")
    biggest = points[-1] if points else None
    if biggest and biggest[0] >= 5000 and data["posts"] >= 1_000_000:
        r.goal("Feed p99 < 20 ms at 5,000 followees and 1M posts", f"{biggest[2]:.1f} ms",
               biggest[2] < 20)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label="p50")
    ax.plot([p[0] for p in points], [p[2] for p in points], marker="o", label="p99")
    ax.set_xscale("log")
    ax.set_xlabel("followees")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Feed latency vs followees")
    ax.legend()
    r.plot(fig, "feed-followees.png", "Feed latency vs followees")


def auth(r, data):
    logins = data["logins"]["achieved_rate"]
    raw = data["raw_argon2id"]["per_second"]
    edge = data["edge_verifications"]["achieved_rate"]
    raw_tokens = data["raw_token_verifications"]["per_second"]
    r.add("## Auth", "",
          "| | per second | baseline (same cores) | ratio |", "|---|---:|---:|---:|",
          f"| `POST /auth/login` | {logins:.1f} | {raw:.1f} raw argon2id verifications "
          f"({data['raw_argon2id']['threads']} threads) | {logins / raw:.2f} |",
          f"| `GET /auth/verify` through the gateway | {edge:.0f} | {raw_tokens:.0f} raw EdDSA "
          f"token checks ({data['raw_token_verifications']['threads']} threads) | "
          f"{edge / raw_tokens:.2f} |", "",
          f"Errors: logins {data['logins']['errors']}, verifications "
          f"{data['edge_verifications']['errors']}.", "")
    rounds(r, "Logins and raw hashes", data.get("login_rounds"))
    r.goal("Logins/s within 95% of raw argon2id/s", f"{logins / raw:.0%}", logins / raw >= 0.95)


def rounds(r, what, ratios):
    """The per-round ratios of a suite measured in turns with its baseline."""
    if ratios:
        r.add(f"{what} were measured in {len(ratios)} alternating rounds (so that the host's "
              "drift weighs on both alike); each round's ratio: "
              + ", ".join(f"{x:.2f}" for x in ratios) + ".", "")


def photos(r, data):
    up = data["uploads"]["achieved_rate"]
    turbo = data["libjpeg_turbo"]["per_second"]
    vips = data["libvips"]["per_second"]
    mb = data["jpeg_bytes"] / 1e6
    r.add("## Photos", "",
          f"A {data['width']}×{data['height']} JPEG ({mb:.2f} MB) uploaded as a public photo "
          "(decode, orientation, metadata stripped by re-encoding at quality 85 with optimised "
          "Huffman tables, 320 px thumbnail, SHA-256, content-addressed storage, database row), "
          "against the pipeline a user could script with libjpeg-turbo's own tools "
          "(`djpeg | cjpeg -quality 85 -optimize`, and `djpeg -scale 1/4 | cjpeg -quality 85` "
          "for the thumbnail: four process starts per photo) and against libvips' tools "
          "(`vips copy …[Q=85,strip]`, `vipsthumbnail -s 320`, one libvips thread each), on "
          "the same image and cores, each pipeline run on as many threads as the service "
          "has workers.", "",
          "| | per second | MB/s | p50 ms | errors |", "|---|---:|---:|---:|---:|",
          f"| `POST /photos` | {up:.1f} | {up * mb:.1f} | "
          f"{ms(data['uploads']['latency_ms']['p50'])} | {data['uploads']['errors']} |",
          f"| libjpeg-turbo pipeline ({data['libjpeg_turbo']['threads']} threads) | "
          f"{turbo:.1f} | {turbo * mb:.1f} | | |",
          f"| libvips pipeline ({data['libvips']['threads']} threads) | {vips:.1f} | "
          f"{vips * mb:.1f} | | |", "",
          f"Uploads vs the libjpeg-turbo pipeline: **{up / turbo:.2f}**; vs libvips: "
          f"**{up / vips:.2f}**.", "")
    rounds(r, "Uploads and the libjpeg-turbo pipeline (libvips after it)", data.get("rounds"))
    r.goal("Photo uploads at ≥ 90% of the libjpeg-turbo pipeline's rate", f"{up / turbo:.0%}",
           up / turbo >= 0.9)


def memory(r, data, processes_mix):
    mib = lambda kib: f"{kib / 1024:.0f}"  # noqa: E731
    r.add("## Memory", "", "Resident memory. `agora up` runs every service and the gateway "
          "in one process; below it, the same services each in its own process (the binaries "
          "their containers run, wired as the operator wires them), seeded alike and put "
          "through the social mix at the best rate the mix held. Peaks are sampled twice a "
          "second over the whole `agora-bench mix` command, which ends with the feed alone "
          "at its maximum (16 connections) on both platforms. PostgreSQL as the sum of its "
          "processes' proportional set sizes, so shared buffers count once.", "",
          "| | idle (seeded) MiB | through the social mix MiB |", "|---|---:|---:|",
          f"| agora up (every service and the gateway, one process) | "
          f"{mib(data['agora_kib']['idle'])} | {mib(data['agora_kib']['mix_peak'])} (peak) |")
    services = data.get("services_kib") or {}
    for name, kib in services.items():
        r.add(f"| {name} (own process) | {mib(kib['idle'])} | {mib(kib['mix_peak'])} (peak) |")
    if services:
        r.add(f"| all {len(services)} processes | "
              f"{mib(sum(k['idle'] for k in services.values()))} | "
              f"{mib(sum(k['mix_peak'] for k in services.values()))} (sum of peaks) |")
    r.add(f"| PostgreSQL (agora up's databases) | {mib(data['postgresql_pss_kib']['idle'])} | "
          f"{mib(data['postgresql_pss_kib']['after_mix'])} (right after the first mix) |")
    step = (processes_mix or {}).get("steps", [None])[0]
    if step:
        lat = step["latency_ms"]
        r.add("", f"The per-process platform through the mix at {step['offered_rate']:.0f} req/s: "
              f"achieved {step['achieved_rate']:.0f} req/s, p50 {ms(lat['p50'])} ms, "
              f"p99 {ms(lat['p99'])} ms, {step['errors']} errors (one process per service adds "
              "a thread pool, a database pool and a token cache per service, where `agora up` "
              "shares one runtime).")


def tracing(r, data):
    """The mix with tracing off, at 10 % sampling and with every request traced."""
    runs = {mode: load(r.results, f"tracing-{mode}") for mode in ("off", "ratio10", "all")}
    if any(run is None for run in runs.values()):
        return
    modes = data["modes"]
    labels = {"off": "tracing off", "ratio10": "10 % of requests traced",
              "all": "every request traced"}
    # p99 compared at the highest offered rate all three runs measured.
    common = set.intersection(*({s["offered_rate"] for s in run["steps"]} for run in runs.values()))
    at = max(common) if common else None
    r.add("## Tracing cost", "",
          f"The social mix (as above) against `agora up` restarted three times on the same "
          f"data: tracing off, 10 % sampled (`parentbased_traceidratio`), and every request "
          f"traced, exporting by OTLP/HTTP to {data['collector']} on the same two cores. "
          "The collector's CPU time is over the whole `agora-bench mix` command.", "",
          f"| | best rate req/s | vs off | p99 ms at {at or 0:.0f} req/s | `GET /feed` alone, max | "
          "collector CPU s | agora up peak MiB | spans dropped |",
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    off_best = runs["off"].get("best_rate") or 0
    ratios = {}
    for mode, run in runs.items():
        best = run.get("best_rate") or 0
        ratios[mode] = best / off_best if off_best else 0
        step = next((s for s in run["steps"] if s["offered_rate"] == at), None)
        p99 = ms(step["latency_ms"]["p99"]) if step else "–"
        m = modes.get(mode, {})
        feed = run["feed_max"]["achieved_rate"]
        off_feed = runs["off"]["feed_max"]["achieved_rate"]
        feed_ratio = f" ({feed / off_feed:.2f}×)" if off_feed else ""
        r.add(f"| {labels[mode]} | {best:.0f} | {ratios[mode]:.2f}× | {p99} | "
              f"{feed:.0f}{feed_ratio} | {m.get('collector_cpu_seconds', 0):.1f} | {m.get('agora_peak_kib', 0) / 1024:.0f} | "
              f"{m.get('spans_dropped', 0)} |")
    memory_ratio = (modes["all"]["agora_peak_kib"] / modes["off"]["agora_peak_kib"]
                    if modes.get("off", {}).get("agora_peak_kib") else 0)
    r.add("", "Best rate: the highest offered rate with p99 under the mix's limit and no "
          "error. A rate step is 100-200 req/s, so a ratio moves by a step's worth at once, "
          "and the host's drift between the three sweeps is of the same size.")
    cost = data.get("cost")
    capacity = {}
    if cost and cost.get("rounds"):
        per_request = {}
        for entry in cost["rounds"]:
            step = entry["step"]
            if step.get("machine_cpu_seconds") and step["requests"]:
                per_request.setdefault(entry["mode"], []).append(
                    step["machine_cpu_seconds"] / step["requests"] * 1e6)
        rounds = max((e["round"] for e in cost["rounds"]), default=0)
        r.add("", f"**The cost in CPU time.** The same mix at a fixed {cost['rate']:.0f} req/s, "
              f"below every mode's limit, in {rounds} rounds that rotate the modes' order "
              "(`agora up` restarted for each); the whole machine's CPU time (every process: "
              "agora, PostgreSQL, the collector, the load generator; `/proc/stat`) over the "
              "measured window, per request. With both cores saturated the best rate is "
              "inversely proportional to it, so `off ÷ mode` is the share of the best rate a "
              "mode keeps, without the sweep's step size or drift between sweeps.", "",
              "| | CPU µs per request, each round | median | capacity vs off | p99 ms (median) |",
              "|---|---|---:|---:|---:|")
        off = statistics.median(per_request.get("off", [0])) or 0
        for mode in ("off", "ratio10", "all"):
            values = per_request.get(mode)
            if not values:
                continue
            median = statistics.median(values)
            capacity[mode] = off / median if median else 0
            p99s = [e["step"]["latency_ms"]["p99"] for e in cost["rounds"] if e["mode"] == mode]
            r.add(f"| {labels[mode]} | {', '.join(f'{v:.0f}' for v in values)} | {median:.0f} | "
                  f"{capacity[mode]:.3f}× | {ms(statistics.median(p99s))} |")
    attributed = attributed_capacity(cost, r, labels) if cost else {}
    if attributed:
        capacity = attributed
    kept10 = capacity.get("ratio10", ratios["ratio10"])
    kept_all = capacity.get("all", ratios["all"])
    basis = ("capacity by the CPU agora and the collector spend per request" if attributed
             else "capacity by CPU per request" if capacity else "best rate")
    r.goal("Tracing 10 % of requests costs ≤ 3 % of the mix's throughput",
           f"{kept10:.3f}× ({basis}; best rate {ratios['ratio10']:.2f}×)", kept10 >= 0.97)
    r.goal("Tracing every request costs ≤ 15 % of the mix's throughput",
           f"{kept_all:.3f}× ({basis}; best rate {ratios['all']:.2f}×)", kept_all >= 0.85)
    r.goal("agora up's peak memory with every request traced within 20 % of tracing off",
           f"{memory_ratio:.2f}×", 0 < memory_ratio <= 1.2)


def attributed_capacity(cost, r, labels):
    """The cost rounds' CPU time split by process: what tracing adds is agora's and the
    collector's work, while PostgreSQL and the load generator do the same in every mode;
    their time (the machine's less the watched processes') is pooled over every window,
    so a checkpoint or autovacuum that lands in one window does not decide a mode."""
    watched, rest = {}, []
    for entry in cost.get("rounds", []):
        step = entry["step"]
        cpu = step.get("process_cpu_seconds") or {}
        if "agora" not in cpu or not step.get("requests") or not step.get("machine_cpu_seconds"):
            return {}
        mine = cpu["agora"] + cpu.get("collector", 0.0)
        watched.setdefault(entry["mode"], []).append(mine / step["requests"] * 1e6)
        rest.append((step["machine_cpu_seconds"] - mine) / step["requests"] * 1e6)
    if "off" not in watched:
        return {}
    others = statistics.median(rest)
    r.add("", "**The same windows, by process.** Agora's and the collector's CPU time "
          "(`/proc/<pid>/stat`) over each measured window, per request; everything else "
          "(PostgreSQL, the load generator, the kernel's own threads) does the same work in "
          f"every mode and is taken once, as the median over all {len(rest)} windows "
          f"({others:.0f} µs per request). Capacity vs off is then "
          "`(others + off) ÷ (others + mode)`.", "",
          "| | agora + collector CPU µs per request, each round | median | capacity vs off |",
          "|---|---|---:|---:|")
    off = statistics.median(watched["off"])
    capacity = {}
    for mode in ("off", "ratio10", "all"):
        values = watched.get(mode)
        if not values:
            continue
        median = statistics.median(values)
        capacity[mode] = (others + off) / (others + median)
        r.add(f"| {labels[mode]} | {', '.join(f'{v:.0f}' for v in values)} | {median:.0f} | "
              f"{capacity[mode]:.3f}× |")
    return capacity


def backup(r, data):
    """A backup while the mix runs, and a restore."""
    step = data["mix"]
    lat = step["latency_ms"]
    mib = 1 << 20
    dbs = ", ".join(f"{k} {v / mib:.1f} MiB" for k, v in data["databases"].items())
    r.add("", "## Backup and restore", "",
          f"`agora backup` of the seeded platform ({data['people']} people; {data['photo_objects']} "
          f"photo objects, {data['photo_bytes'] / mib:.1f} MiB) to a directory, started while the "
          f"social mix runs at {data['mix_rate']:.0f} req/s (half the mix's best rate, or "
          "`BACKUP_MIX_RATE` when a run of this suite alone sets it), "
          "then `agora restore` of it into a new state dir (a PostgreSQL cluster of its own: "
          "initdb, the restores, stop).", "",
          "| backup s | size MiB | backup peak RSS MiB | restore s | mix p50 ms | mix p99 ms | errors |",
          "|---:|---:|---:|---:|---:|---:|---:|",
          f"| {data['backup_seconds']:.1f} | {data['bytes'] / mib:.1f} | "
          f"{data['backup_peak_kib'] / 1024:.0f} | {data['restore_seconds']:.1f} | "
          f"{ms(lat['p50'])} | {ms(lat['p99'])} | {step['errors']} |", "",
          f"Dumps: {dbs}. The backup streams every object (pg_dump's output, each photo) "
          "through a SHA-256 into the destination; its peak memory is the process's "
          "high-water mark (`VmHWM`), pg_dump's own excluded.", "")
    r.goal("The mix's p99 while a backup runs at half its best rate under 50 ms",
           f"{ms(lat['p99'])} ms", lat["p99"] < 50 and step["errors"] == 0)


def notify(r, data):
    """Open notification streams' memory; follow-to-stream latency beside the mix."""
    lat = data["latency_ms"]
    mix_step = data.get("mix") or {}
    mix_lat = mix_step.get("latency_ms", {})
    r.add("", "## Notifications", "",
          f"{data['streams']} streams open at once through the gateway ({data['listeners']} "
          "people, up to five each); agora up's resident memory before and after gives "
          "the cost of one stream (the gateway's and the notifications service's parts). "
          f"Then one person follows a listener after another at {data['rate']:.0f} a second "
          f"beside the social mix at {data['mix_rate']:.0f} req/s; each follow's latency runs "
          "from its answer to the `notification` event on the follower's stream (outbox, "
          "delivery, the notice applied, `NOTIFY`, the stream).", "",
          "| streams | KiB per stream | follows | missing | p50 ms | p90 ms | p99 ms | max ms | mix p99 ms | mix errors |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
          f"| {data['streams']} | {data['kib_per_stream']:.1f} | {data['follows']} | "
          f"{data['missing']} | {ms(lat['p50'])} | {ms(lat['p90'])} | {ms(lat['p99'])} | "
          f"{ms(lat['max'])} | {ms(mix_lat.get('p99', 0))} | {mix_step.get('errors', 0)} |", "")
    r.goal("A notification on the stream within 2 s of the action's answer (p99, beside the mix)",
           f"{ms(lat['p99'])} ms, {data['missing']} missing",
           lat["p99"] < 2000 and data["missing"] == 0)
    r.goal("One replica holds 1,000 open streams",
           f"{data['streams']} open, {data['kib_per_stream']:.1f} KiB each",
           data["streams"] >= 1000)


def lifecycle(r, data):
    """The token-refusal check's cost; a person's export and erasure."""
    def best(run):
        rate = run.get("best_rate") or 0
        step = next((s for s in run["steps"] if s["offered_rate"] == rate), None)
        return rate, (step["latency_ms"]["p99"] if step else 0)
    off_rate, off_p99 = best(data["mix_unrevoked"])
    on_rate, on_p99 = best(data["mix_revoked"])
    leaver = data["leaver"]
    mib = lambda kib: kib / 1024
    r.add("", "## Leaving: token refusal, export and erasure", "",
          "The social mix back to back without a live token revocation (each check one "
          f"atomic load) and with {data['revocations']} of them (each check a map lookup; "
          "none names a caller, so none is refused): the best rate held and the p99 there.", "",
          "| live revocations | best rate (req/s) | p99 at it (ms) |", "|---:|---:|---:|",
          f"| 0 | {off_rate:.0f} | {ms(off_p99)} |",
          f"| {data['revocations']} | {on_rate:.0f} | {ms(on_p99)} |", "",
          f"A person with {leaver['posts']} posts, {leaver['comments']} comments and "
          f"{leaver['photos']} photos ({leaver['photo_bytes'] / 1e6:.1f} MB of JPEG) asks for "
          "their export (every service streams its part; the auth service writes the zip "
          "as the parts arrive into the photos service's storage), fetches it, then "
          "deletes their account. agora up runs every service in one process: its "
          "resident memory is every service's together.", "",
          "| export ready (s) | archive (MB) | fetch (s) | agora up before → peak (MiB) | token refused after (ms) | erased after (s) |",
          "|---:|---:|---:|---:|---:|---:|",
          f"| {leaver['export_seconds']:.2f} | {leaver['archive_bytes'] / 1e6:.1f} | "
          f"{leaver['fetch_seconds']:.2f} | {mib(leaver['rss_before_kib']):.0f} → "
          f"{mib(leaver['rss_peak_kib']):.0f} | {leaver['token_refused_ms'] or 0:.0f} | "
          f"{leaver['erase_seconds']:.2f} |", "")
    r.goal("Revoked tokens refused within 2 s of the DELETE answer",
           f"{leaver['token_refused_ms'] or 0:.0f} ms", (leaver["token_refused_ms"] or 1e9) < 2000)
    r.goal("The token-refusal check costs under 5 % of the mix's best rate",
           f"{off_rate:.0f} → {on_rate:.0f} req/s", on_rate >= 0.95 * off_rate)
    r.goal("An export of 1,000 posts, 2,000 comments and 200 photos ready within 60 s",
           f"{leaver['export_seconds']:.1f} s", leaver["export_seconds"] < 60)
    r.goal("The archive streamed: agora up's peak grows by less than the archive's size",
           f"+{mib(leaver['rss_peak_kib'] - leaver['rss_before_kib']):.0f} MiB for "
           f"{leaver['archive_bytes'] / 2**20:.0f} MiB",
           leaver["rss_peak_kib"] - leaver["rss_before_kib"] < leaver["archive_bytes"] / 1024)


def cloudnative_pg(r, three, one, again, failover, meta):
    """Three synchronous CloudNativePG instances against one; a failover's figures."""
    def best(run):
        rate = run.get("best_rate") or 0
        step = next((s for s in run["steps"] if s["offered_rate"] == rate), None)
        return rate, (step["latency_ms"]["p99"] if step else 0)
    rows = [("3, quorum of 1 synchronous standby", three), ("1", one),
            ("3, synchronous, again", again)]
    r.add("", "## CloudNativePG: replicas and failover", "",
          f"Run {meta.get('date', '?')}: the platform of `hack/e2e.sh up --database "
          "cloudnative-pg` on the real node (every pod, the load generator and PostgreSQL on "
          f"the same two cores; {meta.get('profile', '?')} builds of the images), "
          f"{meta.get('users', '?')} people seeded, then the social mix through the gateway's Service "
          "at rising rates (p99 limit 100 ms) with three instances, one, and three again "
          "(the drift of the run): `hack/bench-cloudnative-pg.sh`.", "",
          "| instances | best rate (req/s) | p99 at it (ms) |", "|---|---:|---:|",
          *[f"| {label} | {best(run)[0]:.0f} | {ms(best(run)[1])} |" for label, run in rows], "")
    if failover:
        r.add("The primary's pod deleted (grace "
              f"{failover['grace_seconds']} s, never forced) under 10 writes and 10 reads a "
              "second through the ingress (`cloudnative_pg::a_failover_under_load_loses_no_"
              "acknowledged_write`): the longest pause between two acknowledged writes from "
              "the kill on, the requests that failed, and the acknowledged writes missing "
              "afterwards.", "",
              "| writes paused (s) | failed / requests | acknowledged | lost |",
              "|---:|---:|---:|---:|",
              f"| {failover['writes_paused_ms'] / 1000:.1f} | {failover['failed']} / "
              f"{failover['requests']} | {failover['acknowledged']} | {failover['lost']} |", "")
        r.goal("A failover: the platform writes again within 30 s of the primary's loss",
               f"{failover['writes_paused_ms'] / 1000:.1f} s", failover["writes_paused_ms"] < 30000)
        r.goal("A failover loses no acknowledged write", f"{failover['lost']} lost",
               failover["lost"] == 0)
    r.goal("Three synchronous instances hold at least 3/4 of one instance's best rate",
           f"{best(three)[0]:.0f} and {best(again)[0]:.0f} vs {best(one)[0]:.0f} req/s",
           max(best(three)[0], best(again)[0]) >= 0.75 * best(one)[0])


def errors(results):
    """Requests that failed where none may: everything but the mix's last, overloaded
    step (an error there is what ends the sweep)."""
    found = []

    def check(what, run):
        if run is None:
            return
        if run.get("errors"):
            found.append(f"{what}: {run['errors']} failed requests {run['kinds']}")
        elif not run.get("requests"):
            found.append(f"{what}: no request was answered in the measured time")

    data = load(results, "edge")
    for name, t in (data or {}).get("targets", {}).items():
        check(f"edge {name} max", t["max"])
        check(f"edge {name} fixed rate", t["fixed_rate"])
    data = load(results, "mix")
    if data:
        check("mix first step", data["steps"][0] if data["steps"] else None)
        check("feed alone", data["feed_max"])
    for name, run in ((load(results, "feed") or {}).get("callers") or {}).items():
        check(f"feed {name}", run)
    data = load(results, "auth")
    if data:
        check("logins", data["logins"])
        check("edge verifications", data["edge_verifications"])
    data = load(results, "photos")
    if data:
        check("uploads", data["uploads"])
    data = load(results, "mix-processes")
    if data and data["steps"]:
        check("mix through the per-process platform", data["steps"][0])
    for mode in ("off", "ratio10", "all"):
        data = load(results, f"tracing-{mode}")
        if data and data["steps"]:
            check(f"mix with tracing {mode}, first step", data["steps"][0])
    data = load(results, "backup")
    if data:
        check("mix during a backup", data["mix"])
    data = load(results, "lifecycle")
    if data:
        for name in ("mix_unrevoked", "mix_revoked"):
            check(f"lifecycle {name}, first step", data[name]["steps"][0] if data[name]["steps"] else None)
    data = load(results, "notify")
    if data:
        check("mix beside the follows", data.get("mix"))
        if data["missing"]:
            found.append(f"notify: {data['missing']} follows never reached the stream")
    for entry in (load(results, "tracing") or {}).get("cost", {}).get("rounds", []):
        check(f"tracing cost, round {entry['round']}, {entry['mode']}", entry["step"])
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--plots", required=True)
    parser.add_argument("--strict", action="store_true",
                        help="fail when a request failed where none may")
    args = parser.parse_args()
    os.makedirs(args.plots, exist_ok=True)
    meta = load(args.results, "meta") or {}
    reruns = {f[:-5]: load(args.results, f[:-5]) for f in os.listdir(args.results)
              if f.startswith("meta-") and f.endswith(".json")}
    r = Report(args.results, args.plots, os.path.dirname(os.path.abspath(args.report)))
    sections = []
    for name, fn in (("edge", edge), ("mix", None), ("feed", feed), ("auth", auth),
                     ("photos", photos), ("memory", memory), ("backup", backup), ("tracing", tracing),
                     ("notify", notify), ("lifecycle", lifecycle)):
        data = load(args.results, name)
        if data is None:
            continue
        if name == "mix":
            mix(r, data, load(args.results, "mix-sql"))
        elif name == "memory":
            memory(r, data, load(args.results, "mix-processes"))
        else:
            fn(r, data)
        sections.append(name)
    cnpg = [load(args.results, f"cloudnative-pg-{n}") for n in ("3-sync", "1", "3-sync-again")]
    if all(cnpg):
        cloudnative_pg(r, *cnpg, load(args.results, "cloudnative-pg-failover"),
                       load(args.results, "cloudnative-pg-meta") or {})
        sections.append("cloudnative-pg")
    body = r.lines
    m = meta.get("machine", {})
    v = meta.get("versions", {})
    s = meta.get("settings", {})
    head = [
        "# Agora benchmarks", "",
        "Generated by `hack/bench.sh` from `bench/results/*.json` — do not edit by hand; "
        "the analysis at the end is `bench/analysis.md`. Each figure is held against a "
        "baseline measured in the same run on the same machine, with the load generator, "
        "PostgreSQL and every service sharing its cores.", "",
        f"- Run: {meta.get('date', '?')} ({'smoke' if meta.get('smoke') else 'full'}, "
        f"{meta.get('profile', '?')} build)",
        f"- Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memory_gib', '?')} GiB, Linux {m.get('kernel', '?')}",
        f"- Versions: agora {v.get('agora', '?')}, {v.get('rustc', '?')}, "
        f"{v.get('postgresql', '?')}, {v.get('nginx', '?')}",
        f"- Settings: {s.get('users', '?')} seeded people, {s.get('posts_per_user', '?')} posts "
        f"each on average; load `{s.get('timing', '?')}` (seconds); PostgreSQL "
        f"`{s.get('postgresql', '?')}`, fsync and synchronous commit on; "
        f"{s.get('agora_workers_per_service', '?')} workers per service; gateway rate limit off",
        *[f"- Rerun of {name[5:].replace('-', ', ')} only: {extra.get('date', '?')}, agora "
          f"{extra.get('versions', {}).get('agora', '?')} (the other suites: the run above)"
          for name, extra in sorted(reruns.items())],
        "- Load: `agora-bench` (bench/), open loop at constant rates with latency from each "
        "request's intended send time (no coordinated omission), or closed loop for maximum "
        "throughput; warm-up excluded; HDR histograms.", "",
        "## Goals", "", "| goal | measured | |", "|---|---:|---|", *r.goals, "",
    ]
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    tail = []
    if os.path.exists(analysis):
        with open(analysis) as f:
            tail = ["", f.read().rstrip()]
    with open(args.report, "w") as f:
        f.write("\n".join(head + body + tail) + "\n")
    found = errors(args.results)
    for line in found:
        print(f"report.py: {line}", file=sys.stderr)
    if found and args.strict:
        sys.exit(1)


if __name__ == "__main__":
    main()
