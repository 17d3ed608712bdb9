"""CPU per request, per process kind: where a create costs, for the service and the reference.

Starts the same servers as `make bench`, runs each app with ONE gunicorn worker and drives
it with ONE wrk connection (nothing queues, so CPU time is the cost of the work), then
reads utime+stime from /proc for the workers, every PostgreSQL process and Redis before and
after, and the WAL the database wrote. `--workers 4 --connections 16` shows what concurrency adds
(the `make bench` setup). Prints microseconds of CPU and WAL records and bytes per request
for each (`--wal-detail`: by record type). `--py-spy FILE` also records a
py-spy profile (GIL-holding samples) of the service worker (or, with `--profile
reference`, the reference's) to FILE (speedscope JSON or .svg flame graph).

    python bench/cpu.py --seconds 10 [--rounds 5] [--scenario creates|redeliveries] [--py-spy /tmp/p.svg]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import Server, bench_setup, replay, start_other_tree, write_requests, wrk  # noqa: E402

from devserver import PostgresServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def machine_busy_ticks() -> int:
    """Every CPU's non-idle time since boot (/proc/stat: user, nice, system, irq, softirq,
    steal): the whole host's cost of a run, the loopback's softirqs and wrk included."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return user + nice + system + irq + softirq + steal


def children_seconds() -> float:
    """CPU seconds of this process's ended children: across a wrk run, wrk's own cost."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [p for c in children for p in tree(int(c))]


def postgres_kind(pid: int) -> str:
    """A PostgreSQL process's role from its title: a backend (a client's connection), or
    the background process it names (walwriter, autovacuum worker, checkpointer...)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except FileNotFoundError:
        return "gone"
    if not title.startswith("postgres: "):
        return "postmaster"
    rest = title[len("postgres: "):]
    return "backend" if "127.0.0.1" in rest or "[local]" in rest else rest.split(" ")[0].rstrip(":") + (
        " worker" if "worker" in rest.split(" ")[:2] else "")


def postgres_by_kind(pg: "PostgresServer") -> dict[str, int]:
    ticks: dict[str, int] = {}
    for pid in tree(postmaster_pid(pg)):
        kind = postgres_kind(pid)
        ticks[kind] = ticks.get(kind, 0) + cpu_ticks(pid)
    return ticks


def postmaster_pid(pg: PostgresServer) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


def wal_position(conn: psycopg.Connection) -> str:
    """Where the server's WAL is being inserted now. Two positions give the bytes written
    between them exactly (pg_stat_wal's counters reach it only when the backends flush
    their statistics, up to seconds later, so they would leak from one run into the next)."""
    return conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]


def wal_bytes(conn: psycopg.Connection, start: str, end: str) -> int:
    return int(conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (end, start)).fetchone()[0])


def wal_between(conn: psycopg.Connection, start: str, end: str) -> dict[str, tuple[int, int]]:
    """The WAL written between two positions, by record type: {type: (records, bytes)},
    plus "all". The records are counted by pg_walinspect (PostgreSQL 15 and later, a
    contrib extension); without it, only "all"'s bytes, from the positions."""
    total = wal_bytes(conn, start, end)
    try:
        rows = conn.execute(
            'SELECT "resource_manager/record_type", count, combined_size FROM pg_get_wal_stats(%s, %s, true)'
            " WHERE count > 0", (start, end)).fetchall()
    except psycopg.Error:
        return {"all": (0, total)}
    split = {kind: (int(count), int(size)) for kind, count, size in rows}
    split["all"] = (sum(count for count, _ in split.values()), total)
    return split


def enable_walinspect(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        return True
    except psycopg.Error:
        return False


def id_prefix(target: str, round_: int) -> str:
    """The ticket ids' prefix of one target's round: a name such as `at before` (a
    --compare-tree) must not put a space in an id, which the service refuses (422): every
    request of that target was then a quarantine, not a create."""
    return f"cpu-{re.sub(r'[^A-Za-z0-9._:-]+', '-', target)}-{round_}"


def measure(server: Server, pg: PostgresServer, redis_pid: int, requests_file: Path, seconds: int,
            spy: str | None, connections: int, wal_conn: psycopg.Connection) -> dict[str, float]:
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True,
                                              text=True).stdout.split()]
    worker = workers[0]
    groups = {"worker": lambda: workers, "postgres": lambda: tree(postmaster_pid(pg)), "redis": lambda: [redis_pid]}
    wal_start = wal_position(wal_conn)
    before = {k: sum(cpu_ticks(p) for p in f()) for k, f in groups.items()}
    machine_before, wrk_before = machine_busy_ticks(), children_seconds()
    kinds_before = postgres_by_kind(pg)
    recorder = None
    if spy:
        fmt = "speedscope" if spy.endswith(".json") else "raw" if spy.endswith(".txt") else "flamegraph"
        spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        recorder = subprocess.Popen([spy_bin, "record", "--gil", "--nonblocking", "-r", "250", "-d", str(seconds), "-f", fmt,
                                     "-o", spy, "-p", str(worker)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    result = wrk(server.url, requests_file, seconds, connections=connections, threads=min(2, connections))
    machine_after, wrk_after = machine_busy_ticks(), children_seconds()
    after = {k: sum(cpu_ticks(p) for p in f()) for k, f in groups.items()}
    kinds_after = postgres_by_kind(pg)
    wal_end = wal_position(wal_conn)
    if recorder:
        recorder.wait(60)
    n = result["n"]
    out = {k: (after[k] - before[k]) / TICKS / n * 1e6 for k in groups}
    out["rps"] = result["rps"]
    out["wrk"] = (wrk_after - wrk_before) / n * 1e6
    out["machine"] = (machine_after - machine_before) / TICKS / n * 1e6
    wal = wal_between(wal_conn, wal_start, wal_end)
    out["wal_records"], out["wal_bytes"] = (v / n for v in wal["all"])
    out["wal_kinds"] = {kind: (count / n, size / n) for kind, (count, size) in wal.items() if kind != "all"}
    # Processes that ended during the run (an autovacuum worker) are missing from `after`:
    # the per-kind split is indicative, the postgres total above is exact for the survivors.
    out["postgres_kinds"] = {k: (kinds_after.get(k, 0) - kinds_before.get(k, 0)) / TICKS / n * 1e6
                             for k in sorted(set(kinds_after) | set(kinds_before))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--scenario", choices=["creates", "redeliveries"], default="creates")
    parser.add_argument("--py-spy", dest="spy",
                        help="record a py-spy profile of a worker here (.json: speedscope, .txt: collapsed stacks)")
    parser.add_argument("--profile", choices=["service", "reference", "plain"], default="service",
                        help="whose worker --py-spy records (default: service)")
    parser.add_argument("--only-service", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per app (default 1)")
    parser.add_argument("--connections", type=int, default=1,
                        help="wrk connections (default 1: nothing queues; more shows what concurrency costs)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each target this many times, alternating; print medians")
    parser.add_argument("--postgres-detail", action="store_true",
                        help="split PostgreSQL's CPU by process (backends, walwriter, autovacuum...)")
    parser.add_argument("--wal-detail", action="store_true",
                        help="split each request's WAL by record type (heap insert, index insert, commit...)")
    parser.add_argument("--compare-tree", type=Path,
                        help="also measure the service of another checkout (`git worktree add /tmp/before <commit>`), "
                             "on a database of its own")
    args = parser.parse_args()

    with bench_setup("ingestion-cpu-", workers=args.workers, with_reference=not args.only_service) as bench, \
            psycopg.connect(bench.url, autocommit=True) as wal_conn:  # (opened before any CPU is counted)
        work, pg = bench.work, bench.pg
        inspect = enable_walinspect(wal_conn)  # else the WAL records column reads 0
        redis_pid = int(subprocess.run(["pgrep", "-f", f"redis-server.*:{bench.redis.port}"], capture_output=True,
                                       text=True).stdout.split()[0])
        targets = {"service": bench.service}
        if bench.reference is not None:
            targets["reference"] = bench.reference
            targets["plain"] = bench.plain
        if args.compare_tree:
            targets[f"at {args.compare_tree.name}"] = start_other_tree(bench, args.compare_tree.resolve(), args.workers)
        print(f"{args.scenario}, {args.workers} worker(s), {args.connections} connection(s), {args.seconds} s, "
              f"{args.rounds} round(s); CPU microseconds per request (all workers; medians over rounds); "
              "wrk: the load generator; machine: the whole host (every process and the kernel's softirqs); "
              "WAL records (pg_walinspect" + ("" if inspect else ": not installed, 0") + ") and bytes per request")
        print(f"  {'target':<12}{'req/s':>8}{'worker':>9}{'postgres':>10}{'redis':>8}{'total':>8}{'wrk':>7}"
              f"{'machine':>9}{'wal rec':>9}{'wal B':>7}")
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for round_ in range(args.rounds):  # alternating, so the host's drift falls on every target alike
            for name, server in targets.items():
                basic = name == "plain"  # the plain reference checks Basic credentials
                if args.scenario == "creates":
                    requests_file = write_requests(work / "r.tsv", id_prefix(name, round_), 3000 * args.seconds,
                                                   basic_auth=basic)
                else:
                    stored = write_requests(work / "s.tsv", "stored", 500, basic_auth=basic)
                    replay(server.url, stored, times=2)
                    requests_file = write_requests(work / "r.tsv", "stored", 3000 * args.seconds, distinct=500,
                                                   basic_auth=basic)
                results[name].append(measure(server, pg, redis_pid, requests_file, args.seconds,
                                             args.spy if name == args.profile and round_ == 0 else None,
                                             args.connections, wal_conn))
        for name, runs in results.items():
            m = {k: statistics.median(r[k] for r in runs)
                 for k in ("rps", "worker", "postgres", "redis", "wrk", "machine", "wal_records", "wal_bytes")}
            total = m["worker"] + m["postgres"] + m["redis"]
            print(f"  {name:<12}{m['rps']:>8.0f}{m['worker']:>9.0f}{m['postgres']:>10.0f}{m['redis']:>8.0f}{total:>8.0f}"
                  f"{m['wrk']:>7.0f}{m['machine']:>9.0f}{m['wal_records']:>9.1f}{m['wal_bytes']:>7.0f}"
                  + (f"   per round total: {', '.join(str(round(r['worker'] + r['postgres'] + r['redis'])) for r in runs)}"
                     if len(runs) > 1 else ""))
            if args.postgres_detail:
                kinds = sorted({k for r in runs for k in r["postgres_kinds"]})
                split = {k: statistics.median(r["postgres_kinds"].get(k, 0) for r in runs) for k in kinds}
                print("      postgres: " + ", ".join(f"{k} {v:.0f}" for k, v in split.items() if v))
            if args.wal_detail:
                kinds = {k for r in runs for k in r["wal_kinds"]}
                split = {k: (statistics.median(r["wal_kinds"].get(k, (0, 0))[0] for r in runs),
                             statistics.median(r["wal_kinds"].get(k, (0, 0))[1] for r in runs)) for k in kinds}
                print("      WAL per request: " + ", ".join(
                    f"{k} {count:.2f} x {size:.0f} B" for k, (count, size)
                    in sorted(split.items(), key=lambda item: -item[1][1]) if count >= 0.05))


if __name__ == "__main__":
    main()
