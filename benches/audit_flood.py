#!/usr/bin/env python3
"""Audit log growth under a sustained anonymous flood, measured by hand (not a test).

Starts a release `scimd serve` on a fresh database, then floods it for --seconds from
--clients loopback addresses (127.2.0.0/16 and up; Linux routes all of 127/8 to loopback):
each request has no valid token, a 30 KB User-Agent, a 30 KB resource id in the path and a
method that varies, as an attacker varying every field would send. Prints the requests sent,
the answers by status, the audit rows and the growth of the database (its pages as a reader
sees them) and of the audit tables (dbstat), extrapolated to an hour; the WAL's size is
printed as it is (it is reused after each checkpoint rather than growing).

    cargo build --release
    python3 benches/audit_flood.py --seconds 120
"""

import argparse
import asyncio
import collections
import os
import re
import sqlite3
import subprocess
import tempfile
import time

BIG = 30_000


def address(n):
    n += 1
    return f"127.{2 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


async def one(port, n, stats):
    ip = address(n % ARGS.clients)
    method = ["GET", "DELETE", "PATCH", f"X{n % 50}"][n % 4]
    head = (
        f"{method} /scim/v2/Users/{n}{'i' * BIG} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer wrong-{n}\r\nUser-Agent: {n}{'a' * BIG}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
        w.write(head.encode())
        await w.drain()
        line = await r.readline()
        w.close()
        m = re.match(rb"HTTP/1.1 (\d+)", line)
        stats[m.group(1).decode() if m else "?"] += 1
    except OSError as e:
        stats[type(e).__name__] += 1


async def flood(port, stats):
    deadline = time.monotonic() + ARGS.seconds
    counter = iter(range(10**12))

    async def worker():
        while time.monotonic() < deadline:
            await one(port, next(counter), stats)

    await asyncio.gather(*(worker() for _ in range(ARGS.concurrency)))


def sizes(db):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    # The database's size as a reader sees it (pages still in the WAL included), and the WAL.
    pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
    files = (pages, wal)
    rows = conn.execute("SELECT COUNT(*) FROM audit WHERE actor_kind = 'anonymous'").fetchone()[0]
    try:
        audit = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_schema WHERE tbl_name IN ('audit', 'audit_refs'))"
        ).fetchone()[0]
    except sqlite3.OperationalError:
        audit = None
    conn.close()
    return files, rows, audit


def main():
    exe = os.path.join(os.path.dirname(__file__), "..", "target", "release", "scimd")
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "scimd.db")
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [exe, "serve", "--db", db, "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        start = sizes(db)
        stats = collections.Counter()
        began = time.monotonic()
        asyncio.run(flood(port, stats))
        took = time.monotonic() - began
        time.sleep(2.5)  # the last flush
        end = sizes(db)
    finally:
        server.terminate()
        server.wait()
    hour = 3600 / took
    sent = sum(stats.values())
    print(f"{sent} requests in {took:.0f} s ({sent / took:.0f}/s) from {ARGS.clients} addresses: {dict(stats)}")
    print(f"anonymous audit rows: {start[1]} -> {end[1]} ({(end[1] - start[1]) * hour:.0f}/hour)")
    grew = end[0][0] - start[0][0]
    print(f"database: {start[0][0]} -> {end[0][0]} bytes: {grew / 1e6:.2f} MB, {grew * hour / 1e6:.2f} MB/hour")
    # The WAL is reused after each checkpoint (every ~1000 pages), so it does not grow with time.
    print(f"WAL: {start[0][1]} -> {end[0][1]} bytes")
    if start[2] is not None:
        a = end[2] - start[2]
        print(f"audit tables (dbstat): {start[2]} -> {end[2]} bytes: {a * hour / 1e6:.2f} MB/hour")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--clients", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=64)
    ARGS = p.parse_args()
    main()
