#!/usr/bin/env bash
# Run the identity-provider vendors' own SCIM test suites against scimd: Microsoft's Entra ID
# Postman collection and Okta's SCIM 2.0 SPEC (2024, 2023, 2019) and CRUD tests, kept unmodified
# with their runners in ../shared/external-suites (see its README.md and SOURCES.md).
#
#   tests/conformance/vendor-suites.sh            # builds scimd (release), runs every suite
#   SCIMD_BIN=/path/to/scimd tests/conformance/vendor-suites.sh
#
# Each suite gets its own freshly started `scimd serve` on loopback with an empty temp database
# (Microsoft's collection counts users, so it needs an empty server). The runners print one
# PASS/FAIL/SKIP line per assertion; a FAIL is tolerated only when tests/conformance/
# vendor-suites.allow lists the assertion's name (at most as many times as it says): that list
# mirrors the table of the suites' own mistakes in external-suites/README.md. Requests the
# vendors send that no assertion of theirs checks also fail the run when they answer an error:
# Microsoft's untested requests (the runner's NOTE lines, e.g. the PATCH adding a member whose
# absence the allow-listed "Get group by id" assertion would hide) and the Okta requests the CRUD
# runner simulates (its SIM lines marked UNEXPECTED).
#
# Environment:
#   SCIMD_BIN             use this scimd binary instead of `cargo build --release --locked`
#   SCIM_EXTERNAL_SUITES  the suites' folder (default: <repo>/../shared/external-suites)
#   VENDOR_SUITES         space-separated subset to run (default: all), names as below
#   VENDOR_SUITES_VERBOSE=1  print PASS lines too
#   RESULTS               runners' reports, incl. request/response of each failure
#                         (default /tmp/scim-external); the full output of each runner goes to
#                         $RESULTS/<suite>.out
#   EXT_NODE_DIR          where setup.sh installs newman and chai (default ~/.cache/...)
#
# Exit status: 0 if every failure is allow-listed, 1 if not, 2 on a setup failure (suites
# missing, npm, build, server start, a runner that could not run or whose output did not parse).
set -euo pipefail

ALL_SUITES=(ms-postman okta-spec-2024 okta-spec-2023 okta-spec-2019 okta-crud)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf '[vendor-suites.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# --- the suites -------------------------------------------------------------------------------
SUITES_DIR="${SCIM_EXTERNAL_SUITES:-$ROOT/../shared/external-suites}"
for f in setup.sh ms-postman.sh okta-spec.sh okta-crud.sh README.md; do
    [[ -f "$SUITES_DIR/$f" ]] || die "vendor suites not found: $SUITES_DIR/$f is missing." \
        "CI lays shared/ beside the clone (<repo>/../shared/external-suites); elsewhere set" \
        "SCIM_EXTERNAL_SUITES to the folder holding setup.sh and the runners."
done
SUITES_DIR="$(cd "$SUITES_DIR" && pwd)"
ALLOW="$ROOT/tests/conformance/vendor-suites.allow"
[[ -f "$ALLOW" ]] || die "allow-list $ALLOW is missing"
command -v python3 >/dev/null || die "python3 is required (the runners and this script use it)"
read -r -a SELECTED <<<"${VENDOR_SUITES:-${ALL_SUITES[*]}}"
for s in "${SELECTED[@]}"; do
    [[ " ${ALL_SUITES[*]} " == *" $s "* ]] || die "unknown suite '$s' (known: ${ALL_SUITES[*]})"
done
export RESULTS="${RESULTS:-/tmp/scim-external}"
mkdir -p "$RESULTS"

# --- scimd binary -----------------------------------------------------------------------------
if [[ -n "${SCIMD_BIN:-}" ]]; then
    [[ -x "$SCIMD_BIN" ]] || die "SCIMD_BIN=$SCIMD_BIN is not an executable"
else
    log "building scimd (cargo build --release --locked)"
    cargo build --release --locked || die "cargo build failed"
    SCIMD_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/scimd"
    [[ -x "$SCIMD_BIN" ]] || die "built binary not found at $SCIMD_BIN"
fi

# --- newman and chai, pinned by the suites' package-lock.json, installed outside shared/ -------
log "setup: $SUITES_DIR/setup.sh"
bash "$SUITES_DIR/setup.sh" >&2 || die "setup.sh failed (needs node and npm)"

# --- temp dir, one server at a time, cleanup --------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor-suites.XXXXXX")"
SERVER_PID=""
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
    stop_server
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a fresh scimd with an empty database in $WORK/$1; sets BASE_URL, TOKEN, SERVER_LOG.
start_server() {
    local dir="$WORK/$1" port healthy=""
    mkdir -p "$dir"
    SERVER_LOG="$dir/scimd.log"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    BASE_URL="http://127.0.0.1:${port}/scim/v2"
    "$SCIMD_BIN" serve --listen "127.0.0.1:${port}" --db "$dir/scimd.db" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 150); do   # up to ~30 s
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$SERVER_LOG" >&2 || true
            die "scimd exited before becoming healthy"
        fi
        if python3 - "http://127.0.0.1:${port}/healthz" <<'EOF' 2>/dev/null; then
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
    # After the start: only `serve` creates the database.
    local out
    out="$("$SCIMD_BIN" token create --name "$1" --db "$dir/scimd.db" 2>"$dir/token.err")" \
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


# allow-list: "SUITE MAX NAME", `*` = a value the suite draws at random
allowed = []  # [name, pattern, max, seen]
for n, raw in enumerate(open(allow_path, encoding="utf-8"), 1):
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    parts = line.split(" ", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        setup_error(f"{allow_path}:{n}: expected 'SUITE MAX NAME'")
    if parts[0] == suite:
        pattern = re.compile(".+".join(re.escape(p) for p in parts[2].split("*")) + r"\Z")
        allowed.append([parts[2], pattern, int(parts[1]), 0])

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
            entry = next((a for a in allowed if a[1].match(name)), None)
            if entry is not None and entry[3] < entry[2]:
                entry[3] += 1
                allowed_fails += 1
                tag = "  [allowed: the suite's own mistake, external-suites/README.md]"
            else:
                unexpected += 1
                tag = "  [NOT ALLOWED" + (f": more than {entry[2]} of this name]" if entry else "]")
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
for name, _, _, seen in allowed:
    if not seen:
        print(f"note: allow-listed but not failing now: {name}")
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
    set +e
    "${runner[@]}" >"$out" 2>&1
    rc=$?
    set -e
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
    set +e
    verdict="$(python3 "$CHECK" "$suite" "$out" "$ALLOW")"
    crc=$?
    set -e
    printf '%s\n' "$verdict"
    [[ $crc -le 1 ]] || die "$suite: could not judge the runner's output ($out)"
    SUMMARIES+=("$(printf '%s\n' "$verdict" | tail -n 1) [$((SECONDS - started)) s]")
    if [[ $crc -eq 1 ]]; then
        FAILED+=("$suite")
        log "$suite: failures not in the allow-list; request/response of each in $RESULTS/$suite/failures.txt"
    fi
done

printf '\nvendor suites (%d s in all):\n' "$SECONDS"
printf '  %s\n' "${SUMMARIES[@]}"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    log "FAILED: ${FAILED[*]}"
    exit 1
fi
