#!/usr/bin/env bash
# Run the identity-provider vendors' own SCIM test suites against scimd: Microsoft's Entra ID
# Postman collection and Okta's SCIM 2.0 SPEC (2024, 2023, 2019) and CRUD tests, kept unmodified
# with their runners in ../shared/external-suites (see its README.md and SOURCES.md).
#
#   tests/conformance/vendor-suites.sh            # builds scimd (release), runs every suite
#   SCIMD_BIN=/path/to/scimd tests/conformance/vendor-suites.sh
#
# Each suite gets its own freshly started `scimd serve` on 127.0.0.1:0 (the address it bound is
# read from its log, so nothing else can answer in its place) with an empty temp database
# (Microsoft's collection counts users, so it needs an empty server). The runners print one
# PASS/FAIL/SKIP line per assertion; a FAIL is tolerated only when tests/conformance/
# vendor-suites.allow lists the assertion's name (at most as many times as it says; a FAIL counts
# against the first matching entry with allowance left): that list mirrors the table of the
# suites' own mistakes in external-suites/README.md. The same file pins each suite's totals:
# fewer PASS lines than its `min-passed` or more SKIP lines than its `max-skipped` fail the run
# (an assertion turned into a SKIP must not pass unnoticed). An allow-list entry that did not
# fail as often as it allows is printed as a note, not a failure: the suites draw random values,
# so such an entry is harmless; delete it when its assertion is known to pass for good.
# Requests the vendors send that no assertion of theirs checks also fail the run when they answer
# an error: Microsoft's untested requests (the runner's NOTE lines, e.g. the PATCH adding a member
# whose absence the allow-listed "Get group by id" assertion would hide) and the Okta requests
# the CRUD runner simulates (its SIM lines marked UNEXPECTED).
#
# Several runs may share a machine: each has its own temp dir, ports and (by default) reports;
# setup.sh (whose `npm ci` replaces node_modules) runs under an exclusive `flock` on
# $EXT_NODE_DIR.lock and only when node_modules was not installed from the suites' current
# package-lock.json, and every run holds a shared lock on it until it ends, so no run's
# node_modules is replaced under it. Without flock (util-linux) the setup is not serialized.
# INT or TERM stops the run at once: the runner's whole process tree and the server are ended.
#
# Environment:
#   SCIMD_BIN             use this scimd binary instead of `cargo build --release --locked`
#   SCIM_EXTERNAL_SUITES  the suites' folder (default: <repo>/../shared/external-suites)
#   VENDOR_SUITES         space-separated subset to run (default: all), names as below
#   VENDOR_SUITES_ALLOW   the allow-list file (default: tests/conformance/vendor-suites.allow)
#   VENDOR_SUITES_VERBOSE=1  print PASS lines too
#   RESULTS               runners' reports, incl. request/response of each failure; the full
#                         output of each runner goes to $RESULTS/<suite>.out. Default: a
#                         directory in this run's temp dir, kept (and named) only when the run
#                         fails
#   EXT_NODE_DIR          where setup.sh installs newman and chai (default ~/.cache/...)
#
# Exit status: 0 if every failure is allow-listed and the totals are as pinned, 1 if not, 2 on a
# setup failure (suites missing, npm, build, server start, a runner that could not run or whose
# output did not parse, an allow-list without a suite's pins).
set -euo pipefail

ALL_SUITES=(ms-postman okta-spec-2024 okta-spec-2023 okta-spec-2019 okta-crud)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf '[vendor-suites.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# --- the suites -------------------------------------------------------------------------------
SUITES_DIR="${SCIM_EXTERNAL_SUITES:-$ROOT/../shared/external-suites}"
for f in setup.sh ms-postman.sh okta-spec.sh okta-crud.sh README.md package-lock.json; do
    [[ -f "$SUITES_DIR/$f" ]] || die "vendor suites not found: $SUITES_DIR/$f is missing." \
        "CI lays shared/ beside the clone (<repo>/../shared/external-suites); elsewhere set" \
        "SCIM_EXTERNAL_SUITES to the folder holding setup.sh and the runners."
done
SUITES_DIR="$(cd "$SUITES_DIR" && pwd)"
ALLOW="${VENDOR_SUITES_ALLOW:-$ROOT/tests/conformance/vendor-suites.allow}"
[[ -f "$ALLOW" ]] || die "allow-list $ALLOW is missing"
command -v python3 >/dev/null || die "python3 is required (the runners and this script use it)"
read -r -a SELECTED <<<"${VENDOR_SUITES:-${ALL_SUITES[*]}}"
for s in "${SELECTED[@]}"; do
    [[ " ${ALL_SUITES[*]} " == *" $s "* ]] || die "unknown suite '$s' (known: ${ALL_SUITES[*]})"
done

# --- temp dir, the child being waited for, the server, cleanup --------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor-suites.XXXXXX")"
OWN_RESULTS=""
if [[ -z "${RESULTS:-}" ]]; then
    RESULTS="$WORK/results"
    OWN_RESULTS=1
fi
export RESULTS
mkdir -p "$RESULTS"

CHILD=""       # the background child being waited for: the leader of its own process group
SERVER_PID=""

# Runs "$@" in the background as the leader of a new process group and waits for it: bash runs
# an INT/TERM trap only once a foreground command has ended, but interrupts `wait` at once.
# The child gets no stdin and, unless --with-lock, not the lock's fd 9 (a straggler holding it
# would block every later setup).
run_child() {
    local rc=0
    set -m
    if [[ $1 == --with-lock ]]; then
        shift
        "$@" </dev/null &
    else
        "$@" </dev/null 9>&- &
    fi
    CHILD=$!
    set +m
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

# PID $1 and its descendants. Its process group alone would miss some: `timeout`, which the
# runners use, moves itself and the command it watches into a group of their own.
process_tree() {
    ps -e -o pid=,ppid= 2>/dev/null | awk -v root="$1" '
        { parent[$1] = $2 }
        END {
            mine[root] = 1
            do { grew = 0; for (p in parent) if (!(p in mine) && (parent[p] in mine)) { mine[p] = 1; grew = 1 } } while (grew)
            for (p in mine) print p
        }'
}

stop_child() {
    [[ -n "$CHILD" ]] || return 0
    local pids=() p alive
    mapfile -t pids < <(process_tree "$CHILD")
    kill -TERM -- "-$CHILD" 2>/dev/null || true
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        alive=""
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ -n "$alive" ]] || break
        sleep 0.1
    done
    kill -KILL -- "-$CHILD" 2>/dev/null || true
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$CHILD" 2>/dev/null || true
    CHILD=""
}

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    trap '' INT TERM   # a second signal must not cut the cleanup short
    stop_child
    stop_server
    if [[ -n "$OWN_RESULTS" && ( $rc -eq 1 || $rc -eq 2 ) && -n "$(ls -A "$RESULTS" 2>/dev/null)" ]]; then
        # The reports explain the failure: keep them, drop the databases and logs.
        find "$WORK" -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} + 2>/dev/null || true
        log "reports kept in $RESULTS"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- scimd binary -----------------------------------------------------------------------------
if [[ -n "${SCIMD_BIN:-}" ]]; then
    [[ -x "$SCIMD_BIN" ]] || die "SCIMD_BIN=$SCIMD_BIN is not an executable"
else
    log "building scimd (cargo build --release --locked)"
    run_child cargo build --release --locked || die "cargo build failed"
    SCIMD_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/scimd"
    [[ -x "$SCIMD_BIN" ]] || die "built binary not found at $SCIMD_BIN"
fi

# --- newman and chai, pinned by the suites' package-lock.json, installed outside shared/ -------
# setup.sh's `npm ci` deletes node_modules first, so it runs only under the exclusive lock and only
# when node_modules does not hold this package-lock.json's install (npm ci deletes the copy kept
# in node_modules too); then the shared lock, held until this run ends, keeps others' setup out.
export EXT_NODE_DIR="${EXT_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scim-external-suites}"
INSTALLED_LOCK="$EXT_NODE_DIR/node_modules/.vendor-suites-package-lock.json"
node_modules_current() {
    [[ -x "$EXT_NODE_DIR/node_modules/.bin/newman" && -d "$EXT_NODE_DIR/node_modules/chai" ]] &&
        cmp -s "$SUITES_DIR/package-lock.json" "$INSTALLED_LOCK"
}
setup() {
    if node_modules_current; then
        log "setup: newman and chai already installed in $EXT_NODE_DIR from this package-lock.json"
        return
    fi
    log "setup: $SUITES_DIR/setup.sh"
    run_child bash "$SUITES_DIR/setup.sh" >&2 || die "setup.sh failed (needs node and npm)"
    cp "$SUITES_DIR/package-lock.json" "$INSTALLED_LOCK" || die "cannot write $INSTALLED_LOCK"
}
mkdir -p "$(dirname "$EXT_NODE_DIR")" || die "cannot create the parent of $EXT_NODE_DIR"
if command -v flock >/dev/null; then
    LOCK="$EXT_NODE_DIR.lock"
    exec 9>>"$LOCK" || die "cannot open the lock file $LOCK"
    if ! flock -n -x 9; then
        log "setup: waiting for the other runs using $EXT_NODE_DIR to end (lock $LOCK)"
        run_child --with-lock flock -w 600 -x 9 ||
            die "another run held $LOCK for 600 s (the setup waits until no run uses node_modules)"
    fi
    setup
    run_child --with-lock flock -w 600 -s 9 || die "could not take a shared lock on $LOCK"
else
    log "flock not found (util-linux): setup is not serialized with other runs on this machine"
    setup
fi

# Starts a fresh scimd with an empty database in $WORK/$1, on a port the kernel picks; sets
# BASE_URL, TOKEN, SERVER_LOG.
start_server() {
    local dir="$WORK/$1" addr="" healthy=""
    mkdir -p "$dir"
    SERVER_LOG="$dir/scimd.log"
    : >"$SERVER_LOG"   # exists before the child opens it: read below at once
    # Text log at info: the start-up line names the bound address as `listen=IP:PORT`.
    "$SCIMD_BIN" serve --listen 127.0.0.1:0 --db "$dir/scimd.db" --log info --log-format text \
        </dev/null >"$SERVER_LOG" 2>&1 9>&- &
    SERVER_PID=$!
    for _ in $(seq 1 300); do   # up to ~30 s
        addr="$(sed -n 's/.*listen=\(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$SERVER_LOG" | head -n 1 || true)"
        [[ -z "$addr" ]] || break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$SERVER_LOG" >&2 || true
            die "scimd exited before it started serving"
        fi
        sleep 0.1
    done
    if [[ -z "$addr" ]]; then
        cat "$SERVER_LOG" >&2 || true
        die "scimd logged no 'listen=127.0.0.1:PORT' start-up line within 30 s"
    fi
    BASE_URL="http://${addr}/scim/v2"
    for _ in $(seq 1 50); do   # serving already; up to ~10 s more on a loaded machine
        kill -0 "$SERVER_PID" 2>/dev/null || break
        if python3 - "http://${addr}/healthz" <<'EOF' 2>/dev/null; then
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
        die "scimd did not answer GET /healthz at $addr with 200"
    fi
    # After the start: only `serve` creates the database.
    local out
    out="$("$SCIMD_BIN" token create --name "$1" --db "$dir/scimd.db" 2>"$dir/token.err" 9>&-)" \
        || { cat "$dir/token.err" >&2; die "scimd token create failed"; }
    TOKEN="$(printf '%s\n' "$out" | tail -n 1 | tr -d '[:space:]')"
    [[ -n "$TOKEN" ]] || die "scimd token create printed no token"
}

# --- the checker: runner output + allow-list -> verdict ---------------------------------------
CHECK="$WORK/check.py"
cat >"$CHECK" <<'EOF'
"""Judge one runner's output against the allow-list; print its non-PASS lines and a summary."""
import os
import re
import sys

suite, out_path, allow_path = sys.argv[1:4]
verbose = os.environ.get("VENDOR_SUITES_VERBOSE") == "1"


def setup_error(msg):
    print(f"{suite}: {msg}")
    sys.exit(2)


# allow-list: "SUITE MAX NAME", `*` = a value the suite draws at random (no spaces);
# pins: "SUITE min-passed N", "SUITE max-skipped N"
allowed = []  # [name, pattern, max, seen]
pins = {}
for n, raw in enumerate(open(allow_path, encoding="utf-8"), 1):
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[1] in ("min-passed", "max-skipped"):
        if not parts[2].isdigit():
            setup_error(f"{allow_path}:{n}: expected 'SUITE {parts[1]} N'")
        if parts[0] == suite:
            if parts[1] in pins:
                setup_error(f"{allow_path}:{n}: a second '{parts[1]}' for {suite}")
            pins[parts[1]] = int(parts[2])
        continue
    if len(parts) != 3 or not parts[1].isdigit():
        setup_error(f"{allow_path}:{n}: expected 'SUITE MAX NAME'")
    if parts[0] == suite:
        pattern = re.compile(r"\S+".join(re.escape(p) for p in parts[2].split("*")) + r"\Z")
        allowed.append([parts[2], pattern, int(parts[1]), 0])
for key in ("min-passed", "max-skipped"):
    if key not in pins:
        setup_error(f"{allow_path} has no '{suite} {key} N' line (each suite's totals are pinned)")

VERDICT = re.compile(r"^(PASS|FAIL|SKIP) " + re.escape(suite) + r" (.*)$")
SUMMARY = re.compile(r"^" + re.escape(suite) + r": (\d+) passed, (\d+) failed, (\d+) skipped$")


def name_of(rest):
    """The assertion's printed name: no "#NN " step number, no " — detail" after a verdict."""
    rest = re.sub(r"^#\d+ ", "", rest)
    head, sep, tail = rest.partition(" :: ")
    return head + sep + tail.split(" — ", 1)[0] if sep else rest.split(" — ", 1)[0]


counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
summary = None
unexpected = allowed_fails = 0
for line in open(out_path, encoding="utf-8", errors="replace").read().splitlines():
    m = VERDICT.match(line)
    if m:
        verdict, name = m.group(1), name_of(m.group(2))
        counts[verdict] += 1
        tag = ""
        if verdict == "FAIL":
            matching = [a for a in allowed if a[1].match(name)]
            entry = next((a for a in matching if a[3] < a[2]), None)
            if entry is not None:
                entry[3] += 1
                allowed_fails += 1
                tag = "  [allowed: the suite's own mistake, external-suites/README.md]"
            else:
                unexpected += 1
                room = sum(a[2] for a in matching)
                tag = "  [NOT ALLOWED" + (f": more than {room} of this name]" if matching else "]")
        if verdict != "PASS" or verbose:
            print(line + tag)
        continue
    m = SUMMARY.match(line)
    if m:
        summary = tuple(int(x) for x in m.groups())
        continue
    # Requests the vendor sends that no assertion of its suite checks, answering an error.
    if (line.startswith(f"NOTE {suite} ") and "(no test in the collection) answered HTTP" in line) or (
        line.startswith(f"SIM  {suite} ") and "(UNEXPECTED;" in line
    ):
        unexpected += 1
        print(line + "  [NOT ALLOWED: an untested request failed]")

if summary is None:
    setup_error("the runner printed no summary line")
if summary != (counts["PASS"], counts["FAIL"], counts["SKIP"]):
    setup_error(f"summary {summary} does not match the PASS/FAIL/SKIP lines read {tuple(counts.values())}")
# Totals: fewer passes or more skips than pinned means assertions stopped running or checking.
where = os.path.basename(allow_path)
if counts["PASS"] < pins["min-passed"]:
    unexpected += 1
    print(f"{suite}: {counts['PASS']} passed, fewer than the {pins['min-passed']} pinned in {where}  [NOT ALLOWED]")
elif counts["PASS"] > pins["min-passed"]:
    print(f"note: {suite}: {counts['PASS']} passed, more than the {pins['min-passed']} pinned: raise min-passed in {where}")
if counts["SKIP"] > pins["max-skipped"]:
    unexpected += 1
    print(f"{suite}: {counts['SKIP']} skipped, more than the {pins['max-skipped']} pinned in {where}  [NOT ALLOWED]")
elif counts["SKIP"] < pins["max-skipped"]:
    print(f"note: {suite}: {counts['SKIP']} skipped, fewer than the {pins['max-skipped']} pinned: lower max-skipped in {where}")
# Stale entries are only a note: the suites draw random values (see the script's header).
for name, _, most, seen in allowed:
    if seen < most:
        print(f"note: stale allow-list entry (allows {most}, failed {seen} times now): {suite} {name}")
print(
    f"{suite}: {counts['PASS']} passed, {counts['FAIL']} failed ({allowed_fails} allow-listed), "
    f"{counts['SKIP']} skipped; {unexpected} not allowed"
)
sys.exit(1 if unexpected else 0)
EOF

# --- run -------------------------------------------------------------------------------------
SUMMARIES=()
FAILED=()
for suite in "${SELECTED[@]}"; do
    started=$SECONDS
    start_server "$suite"
    log "$suite against $BASE_URL (fresh server, empty database)"
    case "$suite" in
        ms-postman) runner=(bash "$SUITES_DIR/ms-postman.sh" "$BASE_URL" "$TOKEN") ;;
        okta-spec-*) runner=(bash "$SUITES_DIR/okta-spec.sh" "$BASE_URL" "$TOKEN" "${suite#okta-spec-}") ;;
        okta-crud) runner=(bash "$SUITES_DIR/okta-crud.sh" "$BASE_URL" "$TOKEN") ;;
    esac
    out="$RESULTS/$suite.out"
    rc=0
    run_child "${runner[@]}" >"$out" 2>&1 || rc=$?
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "scimd died during $suite; its log:"
        cat "$SERVER_LOG" >&2 || true
        exit 2
    fi
    stop_server
    if [[ $rc -ne 0 && $rc -ne 1 ]]; then
        cat "$out" >&2
        die "$suite: the runner could not run (exit $rc)"
    fi
    crc=0
    verdict="$(python3 "$CHECK" "$suite" "$out" "$ALLOW")" || crc=$?
    printf '%s\n' "$verdict"
    [[ $crc -le 1 ]] || die "$suite: could not judge the runner's output ($out)"
    SUMMARIES+=("$(printf '%s\n' "$verdict" | tail -n 1) [$((SECONDS - started)) s]")
    if [[ $crc -eq 1 ]]; then
        FAILED+=("$suite")
        log "$suite: failures not in the allow-list or totals not as pinned; request/response of each failure in $RESULTS/$suite/failures.txt"
    fi
done

printf '\nvendor suites (%d s in all):\n' "$SECONDS"
printf '  %s\n' "${SUMMARIES[@]}"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    log "FAILED: ${FAILED[*]}"
    exit 1
fi
