#!/usr/bin/env bash
# Run the python-scim `scim2-tester` conformance checks against a freshly started scimd.
#
#   tests/conformance/scim2-tester.sh            # builds scimd (release), runs the checks
#   SCIMD_BIN=/path/to/scimd tests/conformance/scim2-tester.sh
#
# scim2-tester is a library (no CLI of its own; scim2-cli's `scim2 test` cannot exclude tags and
# exits 1 on any SKIPPED result), so this script drives `scim2_tester.check_server` with a small
# embedded Python driver. Every check runs by default, PATCH included.
#
# Environment:
#   SCIMD_BIN                  use this scimd binary instead of `cargo build --release --locked`
#   SCIM2_TESTER_EXCLUDE       comma-separated tags to exclude (default: none), e.g. patch
#   SCIM2_TESTER_RESOURCE_TYPES comma-separated resource type names to test (default: all advertised)
#   SCIM2_TESTER_JSON          write every result as JSON to this file
#   SCIM2_TESTER_VERBOSE=1     print the response data of failed checks
#   SCIM2_TESTER_FULL=1        print reasons whole instead of cut at 600 characters
#
# Exit status: 0 if no non-excluded check failed (ERROR/CRITICAL), 1 if some did, 2 on a setup
# failure (build, venv, server start, or the driver crashing).
set -euo pipefail

SCIM2_TESTER_VERSION=0.5.2
# Pin the whole dependency chain: scim2-tester only asks for scim2-client>=0.11, and the client
# and models decide most of what counts as a failure.
REQUIREMENTS=(
    "scim2-tester[httpx2]==${SCIM2_TESTER_VERSION}"
    "scim2-client[httpx2]==0.13.2"
    "scim2-models==0.12.3"
    "httpx2==2.16.2"
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf '[scim2-tester.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# --- python venv with a pinned scim2-tester ---------------------------------------------------
VENV="$ROOT/target/scim2-tester-venv"
STAMP="$VENV/.scimd-requirements"
WANT="${REQUIREMENTS[*]}"
if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]]; then
    log "creating venv $VENV (scim2-tester $SCIM2_TESTER_VERSION)"
    rm -rf "$VENV"
    mkdir -p "$ROOT/target"
    python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" \
        || die "pip install failed"
    printf '%s' "$WANT" >"$STAMP"
fi
PY="$VENV/bin/python"

# --- scimd binary -----------------------------------------------------------------------------
if [[ -n "${SCIMD_BIN:-}" ]]; then
    [[ -x "$SCIMD_BIN" ]] || die "SCIMD_BIN=$SCIMD_BIN is not an executable"
else
    log "building scimd (cargo build --release --locked)"
    cargo build --release --locked || die "cargo build failed"
    SCIMD_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/scimd"
    [[ -x "$SCIMD_BIN" ]] || die "built binary not found at $SCIMD_BIN"
fi

# --- temp dir, cleanup ------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/scim2-tester.XXXXXX")"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

DB="$WORK/scimd.db"
SERVER_LOG="$WORK/scimd.log"

# --- start the server -------------------------------------------------------------------------
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE_URL="http://127.0.0.1:${PORT}/scim/v2"
log "starting $SCIMD_BIN serve on 127.0.0.1:$PORT"
"$SCIMD_BIN" serve --listen "127.0.0.1:${PORT}" --db "$DB" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

healthy=""
for _ in $(seq 1 150); do   # up to ~30 s
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$SERVER_LOG" >&2 || true
        die "scimd exited before becoming healthy"
    fi
    if "$PY" - "http://127.0.0.1:${PORT}/healthz" <<'EOF' 2>/dev/null; then
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
with opener.open(sys.argv[1], timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
        healthy=1
        break
    fi
    sleep 0.2
done
if [[ -z "$healthy" ]]; then
    cat "$SERVER_LOG" >&2 || true
    die "scimd did not answer GET /healthz with 200 within 30 s"
fi

# --- token (after the start: only `serve` creates the database) ------------------------------
TOKEN_OUT="$("$SCIMD_BIN" token create --name scim2-tester --db "$DB")" || die "scimd token create failed"
TOKEN="$(printf '%s\n' "$TOKEN_OUT" | tail -n 1 | tr -d '[:space:]')"
[[ -n "$TOKEN" ]] || die "scimd token create printed no token"

# --- run scim2-tester -------------------------------------------------------------------------
DRIVER="$WORK/driver.py"
cat >"$DRIVER" <<'EOF'
"""Drive scim2_tester.check_server and summarise the results."""
import json
import os
import sys
from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server, get_all_available_tags

base_url = sys.argv[1]
token = os.environ["SCIM2_TESTER_TOKEN"]
exclude = {t.strip() for t in os.environ.get("SCIM2_TESTER_EXCLUDE", "").split(",") if t.strip()}
resource_types = [t.strip() for t in os.environ.get("SCIM2_TESTER_RESOURCE_TYPES", "").split(",") if t.strip()] or None
verbose = os.environ.get("SCIM2_TESTER_VERBOSE") == "1"


def excluded(tag):
    # Hierarchical like scim2-tester's own matching: "patch" excludes "patch:add", etc.
    return any(tag == e or tag.startswith(e + ":") or e in tag.split(":") for e in exclude)


# scim2-tester 0.5.2's exclude_tags also excludes the "*"-tagged discovery checks whose results
# every later check depends on, so nothing past discovery would run. Select the complement
# with include_tags instead: "*"-tagged checks always run under include_tags.
include = {t for t in get_all_available_tags() if not excluded(t)} if exclude else None

http = httpx2.Client(
    base_url=base_url,
    headers={"Authorization": f"Bearer {token}"},
    timeout=30.0,
    trust_env=False,  # loopback only: ignore any *_PROXY variables
)
client = SyncSCIMClient(http)
results = check_server(client, include_tags=include, resource_types=resource_types)

PASS = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
FAIL = {Status.ERROR, Status.CRITICAL}


def short(x, n=600):
    s = x if isinstance(x, str) else repr(x)
    s = s.replace("\n", "\\n")
    return s if len(s) <= n or os.environ.get("SCIM2_TESTER_FULL") else s[:n] + "..."


counts = Counter()
n_excluded = 0
for r in results:
    counts[r.status] += 1
    is_excl = r.status == Status.SKIPPED and (r.reason or "").startswith("Skipped due to tag")
    n_excluded += is_excl
    where = f"[{r.resource_type}] " if r.resource_type else ""
    label = "EXCLUDED" if is_excl else r.status.name
    print(f"{label:9} {where}{r.title}" + (f": {short(r.reason, 300)}" if r.reason and not is_excl else ""))
    if verbose and r.status in FAIL and r.data is not None:
        data = r.data
        if hasattr(data, "status_code") and hasattr(data, "text"):
            data = f"HTTP {data.status_code} {data.text}"
        print(f"          data: {short(data)}")

if os.environ.get("SCIM2_TESTER_JSON"):
    with open(os.environ["SCIM2_TESTER_JSON"], "w") as f:
        json.dump(
            [
                {
                    "status": r.status.name,
                    "title": r.title,
                    "resource_type": r.resource_type,
                    "tags": sorted(r.tags),
                    "reason": r.reason,
                }
                for r in results
            ],
            f,
            indent=2,
        )

passed = sum(counts[s] for s in PASS)
failed = sum(counts[s] for s in FAIL)
skipped = counts[Status.SKIPPED]
failed_checks = sorted({f"{r.resource_type or '-'}/{r.title}" for r in results if r.status in FAIL})
print()
print("scim2-tester " + os.environ.get("SCIM2_TESTER_VERSION", "?") + f" against {base_url}"
      + (f" (excluded tags: {', '.join(sorted(exclude))})" if exclude else ""))
print("by status: " + ", ".join(f"{s.name}={counts[s]}" for s in Status if counts[s]))
print(f"excluded by tag: {n_excluded}; skipped by the checks themselves: {skipped - n_excluded}")
if failed_checks:
    print("failing checks: " + ", ".join(failed_checks))
print(f"scim2-tester: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
EOF

log "running scim2-tester $SCIM2_TESTER_VERSION against $BASE_URL"
set +e
SCIM2_TESTER_TOKEN="$TOKEN" SCIM2_TESTER_VERSION="$SCIM2_TESTER_VERSION" \
    SCIM2_TESTER_EXCLUDE="${SCIM2_TESTER_EXCLUDE-}" \
    "$PY" -W ignore::DeprecationWarning "$DRIVER" "$BASE_URL"
rc=$?
set -e

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "scimd died during the run; its log:"
    cat "$SERVER_LOG" >&2 || true
    exit 2
fi
if [[ $rc -ne 0 && $rc -ne 1 ]]; then
    log "the scim2-tester driver crashed (exit $rc); scimd log tail:"
    tail -n 50 "$SERVER_LOG" >&2 || true
    exit 2
fi
if [[ $rc -eq 1 ]]; then
    log "some checks failed; scimd log tail:"
    tail -n 30 "$SERVER_LOG" >&2 || true
fi
exit "$rc"
