"""Connecting dataplanes: what TLS on 5678 and a token per stream cost when N dataplanes connect.

    python -m benchmarks.xds_connect [--sizes 1000,5000] [--runs 5] [--clients 8]
                                     [--per-channel 1] [--mtls] [--modes secure,open]
                                     [--rev HEAD|worktree] [--profile DIR]

Each run starts a fresh xDS service in its own process (`--serve`: a memory store holding N
dataplanes, default config but for its ports) in one of two modes:
- `secure`: ADS over TLS (`xdsServer.tlsEnabled`), dataplane tokens checked
  (`adminServer.apis.dataplaneToken.enabled`), same-host trust off (`general.trustLoopback`), so
  that every stream is let in by its own token, checked at its first request;
- `open`: plaintext ADS, token checks off.
The N dataplanes are light ADS clients (benchmarks.xds_client) in `--clients` processes, each
stream with its own connection (`--per-channel 1`, as every Envoy has its own TCP+TLS
connection) or one connection per K streams; in the secure mode each trusts the server's
certificate and carries its own token. Once every client process is loaded, all streams are
opened at once; a stream is done when it has ACKed CDS, EDS, LDS and RDS (when subscribed) and,
with `--mtls` (a Mesh with mTLS, an identity per dataplane), holds its identity.

Measured per run: seconds from the first connect to the last done, per-stream time to full
config (p50/p99), the xDS process's CPU seconds over that window, its RSS per dataplane (after
the quiet collection that follows the storm), the clients' CPU seconds (they share the
machine's cores with the server), and failed calls (retried, as Envoy does). The modes are
interleaved (secure, open, secure, open, ...), `--runs` of each per size, and compared by their
medians. Writes benchmarks/results/xds_connect[-mtls].json: the raw runs, the machine, the
commit.

The measured code (xDS process and clients) is commit `--rev` exported to a temporary folder, so
that commits landing during a long run change nothing (`--rev worktree`: this working tree, as
it is when each process starts). On a shared machine, `others_cpu_seconds` says how much CPU
anything else took during a run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

from benchmarks.xds_convergence import (
    ALLOW_ALL,
    RESULTS,
    cpu_seconds,
    dataplane,
    mesh,
    percentile,
    rss_bytes,
)

MODES = {
    # Same-host trust off: the clients are on this host, and would otherwise pass unchecked.
    "secure": {
        "KUMA_XDS_SERVER_TLS_ENABLED": "true",
        "KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED": "true",
        "KUMA_GENERAL_TRUST_LOOPBACK": "false",
    },
    "open": {
        "KUMA_XDS_SERVER_TLS_ENABLED": "false",
        "KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED": "false",
    },
}


# --- the xDS process (--serve) ---


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each thread of this process, by thread id: Python's threads by their
    Python name (executor workers as one), the others (gRPC's C threads) by their OS name."""
    python = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        tid = int(task.name)
        fields = text[text.rindex(")") + 2 :].split()
        name = python.get(tid) or "C:" + text[text.index("(") + 1 : text.rindex(")")]
        name = re.sub(r"_\d+$", "_*", name)  # asyncio_0, asyncio_1...: the default executor
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_by_thread(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each kind of thread spent since `before` (threads that ended meanwhile are
    not counted)."""
    totals: dict[str, float] = {}
    for tid, (name, cpu) in thread_cpu().items():
        spent = cpu - before.get(tid, (name, 0.0))[1]
        totals[name] = round(totals.get(name, 0.0) + spent, 2)
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def serve(mode: str, n: int, mtls: bool, workdir: Path) -> None:
    """One fresh xDS service holding `n` dataplanes. Talks to the harness over stdin/stdout:
    prints its port; on `go` takes its starting CPU and RSS; on `done` prints what the storm
    cost; on EOF stops."""
    from kuma import tokens
    from kuma.config import load_config
    from kuma.resources import wire
    from kuma.wiring import ensure_default_mesh, open_core
    from services.xds.loop_thread import LoopThread
    from services.xds.service import XdsService

    base = load_config(env=MODES[mode])
    cfg = replace(
        base,
        xds_server=replace(base.xds_server, grpc_port=0, address="127.0.0.1"),
        sds_server=replace(base.sds_server, grpc_port=0),
    )
    core = open_core(cfg)
    core.manager.upsert(wire.from_json(mesh(mtls)))
    ensure_default_mesh(cfg, core.manager)
    if mtls:
        core.manager.upsert(wire.from_json(ALLOW_ALL))
    for i in range(n):
        core.manager.upsert(wire.from_json(dataplane(i)))
    if cfg.admin_server.apis.dataplane_token.enabled:
        key = tokens.ensure_signing_key(core.store)
        issued = {f"dp-{i}": tokens.issue(key, "default", f"dp-{i}") for i in range(n)}
        (workdir / "tokens.json").write_text(json.dumps(issued))
    loop = LoopThread("xds-connect")
    service = XdsService(cfg, core)
    loop.run(service.start())
    (workdir / "ca.pem").write_bytes(service.cert_pem)
    tls = cfg.xds_server.tls_enabled
    print(json.dumps({"port": service.port, "tls": tls}), flush=True)
    assert sys.stdin.readline().strip() == "go"
    gc.collect()
    rss0, cpu0, threads0 = rss_bytes(), cpu_seconds(), thread_cpu()
    print("went", flush=True)
    assert sys.stdin.readline().strip() == "done"
    cpu = cpu_seconds() - cpu0
    threads = cpu_by_thread(threads0)
    # RSS once the storm's garbage is gone: after the quiet full collection that follows it.
    time.sleep(service.collector.quiet + 1.0)
    stats = {
        "xds_cpu_seconds": round(cpu, 3),
        "xds_rss_kib_per_dataplane": round((rss_bytes() - rss0) / 1024 / n, 1),
        "xds_rss_mib": round(rss_bytes() / 2**20, 1),
        "xds_cpu_seconds_by_thread": threads,
    }
    print(json.dumps(stats), flush=True)
    sys.stdin.read()
    loop.run(service.stop(), timeout=300)  # thousands of streams to close (slower profiled)
    loop.close()
    core.close()


# --- the harness ---


def busy_cpu_seconds() -> float:
    """CPU seconds this machine spent on anything so far (/proc/stat: all but idle and iowait):
    with the server's and the clients' own, what else ran during a run (other work on the VM)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def spawn(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=cwd)


def next_line(p: subprocess.Popen[str]) -> str:
    """The next line of `p`, past a profiler's ('' at EOF)."""
    assert p.stdout is not None
    while True:
        text = p.stdout.readline()
        if not text or (text.strip() and not text.startswith("py-spy")):
            return text.strip()


def send(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()


def all_say(pool: ThreadPoolExecutor, procs: list, word: str, timeout: float) -> bool:
    futures = [pool.submit(next_line, p) for p in procs]
    return all(f.result(timeout=timeout) == word for f in futures)


class Run:
    """One xDS process and its client processes; whatever happens, none outlives the run."""

    def __init__(
        self, mode: str, n: int, args: argparse.Namespace, workdir: Path, src: Path
    ) -> None:
        self.mode, self.n, self.args, self.workdir, self.src = mode, n, args, workdir, src
        self.procs: list[subprocess.Popen[str]] = []

    def start_server(self) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "benchmarks.xds_connect", "--serve", self.mode]
        if self.args.profile:
            # py-spy (not a project dependency: pip install py-spy) samples the xDS process's
            # Python threads (gRPC's own C threads are not Python's), one file per run.
            out = Path(self.args.profile) / f"{self.mode}-{self.n}-{time.strftime('%H%M%S')}.txt"
            argv = ["py-spy", "record", "--threads", "--format", "raw", "--rate", "50"]
            argv += ["-o", str(out), "--", sys.executable]
            argv += ["-m", "benchmarks.xds_connect", "--serve", self.mode]
        argv += ["--sizes", str(self.n), "--workdir", str(self.workdir)]
        server = spawn(argv + (["--mtls"] if self.args.mtls else []), self.src)
        self.procs.append(server)
        return server

    def start_clients(self, hello: dict) -> list[subprocess.Popen[str]]:
        argv = [sys.executable, "-m", "benchmarks.xds_client", f"127.0.0.1:{hello['port']}"]
        options = ["--go", "--per-channel", str(self.args.per_channel)]
        options += ["--secrets"] if self.args.mtls else []
        if hello["tls"]:
            options += ["--ca-cert", str(self.workdir / "ca.pem")]
        if (self.workdir / "tokens.json").exists():
            options += ["--tokens", str(self.workdir / "tokens.json")]
        clients, first = [], 0
        per = -(-self.n // self.args.clients)
        while first < self.n:
            count = min(per, self.n - first)
            clients.append(spawn(argv + [str(first), str(count), "0"] + options, self.src))
            first += count
        self.procs += clients
        return clients

    def measure(self) -> dict:
        for stale in ("tokens.json", "ca.pem"):
            (self.workdir / stale).unlink(missing_ok=True)
        server = self.start_server()
        hello = json.loads(next_line(server))
        clients = self.start_clients(hello)
        with ThreadPoolExecutor(len(clients)) as pool:
            assert all_say(pool, clients, "armed", 120), "a client did not start"
            send(server, "go")
            assert next_line(server) == "went"
            busy0 = busy_cpu_seconds()
            for p in clients:
                send(p, "go")
            waiting = [pool.submit(next_line, p) for p in clients]
            finished, _ = wait(waiting, timeout=self.args.timeout)
            busy = busy_cpu_seconds() - busy0
            send(server, "done")
            stats = json.loads(next_line(server))
            complete = len(finished) == len(waiting) and all(f.result() == "ready" for f in waiting)
            for p in clients:  # each reports once its stdin closes, ready or not
                assert p.stdin is not None
                p.stdin.close()
            lines = [f.result(timeout=60) for f in waiting]
        reports = []
        for p, line in zip(clients, lines, strict=True):
            if not line.startswith("{"):
                line = next_line(p)
            reports.append(json.loads(line))
        return self.row(complete, reports, stats, busy)

    def row(self, complete: bool, reports: list[dict], stats: dict, busy: float) -> dict:
        started: dict[str, float] = {}
        done: dict[str, float] = {}
        errors: dict[str, int] = {}
        for report in reports:
            started.update(report["started"])
            done.update(report["done"])
            for code, count in report["errors"].items():
                errors[code] = errors.get(code, 0) + count
        per_stream = [done[node] - started[node] for node in done]
        client_cpu = sum(r["cpu_seconds"] for r in reports)
        return {
            "mode": self.mode,
            "dataplanes": self.n,
            "mtls": self.args.mtls,
            "streams_per_connection": self.args.per_channel or -(-self.n // self.args.clients),
            "connections": sum(r["channels"] for r in reports),
            "complete": complete,
            "done": len(done),
            "seconds": round(max(done.values()) - min(started.values()), 3) if complete else None,
            "stream_p50_s": round(percentile(per_stream, 50), 3) if per_stream else None,
            "stream_p99_s": round(percentile(per_stream, 99), 3) if per_stream else None,
            **stats,
            "xds_cpu_ms_per_dataplane": round(stats["xds_cpu_seconds"] * 1000 / self.n, 2),
            "clients_cpu_seconds": round(client_cpu, 3),
            "others_cpu_seconds": round(busy - stats["xds_cpu_seconds"] - client_cpu, 3),
            "load_average": round(os.getloadavg()[0], 2),
            "failed_calls": errors,
        }

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    assert p.stdin is not None
                    p.stdin.close()
        for p in self.procs:
            try:
                p.wait(360)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_once(mode: str, n: int, args: argparse.Namespace, workdir: Path, src: Path) -> dict:
    run = Run(mode, n, args, workdir, src)
    try:
        return run.measure()
    finally:
        run.close()


def spread(rows: list[dict], key: str) -> tuple[float, float, float] | None:
    values = [r[key] for r in rows if r[key] is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def summarize(rows: list[dict], modes: list[str]) -> list[dict]:
    out = []
    keys = ("seconds", "stream_p99_s", "xds_cpu_seconds", "xds_rss_kib_per_dataplane")
    keys += ("clients_cpu_seconds",)
    for n in sorted({r["dataplanes"] for r in rows}):
        by_mode = {m: [r for r in rows if r["dataplanes"] == n and r["mode"] == m] for m in modes}
        summary: dict = {"dataplanes": n}
        for m, runs in by_mode.items():
            summary[m] = {k: spread(runs, k) for k in keys}
            summary[m]["runs"] = len(runs)
            summary[m]["incomplete"] = sum(not r["complete"] for r in runs)
        if set(modes) == {"secure", "open"}:
            for k in ("seconds", "xds_cpu_seconds"):
                secure, plain = summary["secure"][k], summary["open"][k]
                if secure and plain:
                    summary[f"ratio_{k}"] = round(secure[0] / plain[0], 2)
        out.append(summary)
    return out


def show(summaries: list[dict], modes: list[str]) -> None:
    def cell(value: tuple[float, float, float] | None, digits: int = 2) -> str:
        if value is None:
            return "-"
        med, lo, hi = value
        return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"

    head = ["dataplanes", "mode", "runs", "seconds", "stream p99 s", "xDS CPU-s"]
    head += ["xDS KiB/dp", "clients CPU-s"]
    print("  ".join(f"{h:>22}" for h in head))
    for s in summaries:
        for m in modes:
            row = s[m]
            runs = f"{row['runs'] - row['incomplete']}/{row['runs']}"
            cells = [str(s["dataplanes"]), m, runs, cell(row["seconds"])]
            cells += [cell(row["stream_p99_s"]), cell(row["xds_cpu_seconds"])]
            cells += [cell(row["xds_rss_kib_per_dataplane"], 1), cell(row["clients_cpu_seconds"])]
            print("  ".join(f"{c:>22}" for c in cells))
        if "ratio_seconds" in s:
            print(
                f"{s['dataplanes']:>22}  secure/open of the medians: time "
                f"{s['ratio_seconds']}x, xDS CPU {s.get('ratio_xds_cpu_seconds')}x"
            )


def git(*args: str) -> str:
    here = Path(__file__).parent
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=here).stdout


def source(rev: str, into: Path) -> tuple[Path, dict]:
    """Where the measured code runs from, and what it is: commit `rev` exported (so that commits
    landing during a long run change nothing), or, with `--rev worktree`, this working tree."""
    if rev == "worktree":
        dirty = git("status", "--porcelain", "--untracked-files=no").strip()
        head = git("rev-parse", "--short", "HEAD").strip()
        return Path(__file__).parent.parent, {"commit": head, "uncommitted_changes": bool(dirty)}
    sha = git("rev-parse", "--short", rev).strip()
    if not sha:
        raise SystemExit(f"unknown revision {rev!r}")
    into.mkdir()
    archive = subprocess.run(
        ["git", "archive", sha], capture_output=True, check=True, cwd=Path(__file__).parent.parent
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into, {"commit": sha, "uncommitted_changes": False}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.xds_connect")
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--per-channel", type=int, default=1)
    parser.add_argument("--modes", default="secure,open")
    parser.add_argument("--mtls", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--rev", default="HEAD", help="the commit to measure, or 'worktree'")
    parser.add_argument("--profile", default="", help="folder for py-spy profiles of xDS")
    parser.add_argument("--out", default="", help="result file name (default xds_connect[-mtls])")
    parser.add_argument("--serve", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, int(args.sizes), args.mtls, Path(args.workdir))
        return
    modes = args.modes.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="xds-connect-") as tmp:
        src, measured = source(args.rev, Path(tmp) / "src")
        for n in map(int, args.sizes.split(",")):
            for run in range(args.runs):
                for mode in modes:
                    row = run_once(mode, n, args, Path(tmp), src)
                    row["run"] = run + 1
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    summaries = summarize(rows, modes)
    show(summaries, modes)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        **measured,
        "date": dt.date.today().isoformat(),
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("serve", "workdir", "profile", "rev")
        },
        "summary": summaries,
        "runs": rows,
    }
    name = args.out or ("xds_connect-mtls" if args.mtls else "xds_connect")
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
