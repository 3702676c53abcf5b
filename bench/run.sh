#!/usr/bin/env bash
# bench/run.sh BUILD_DIR: modelgate's benchmarks, all on loopback, in one run (`make bench`).
#
#   HTTP pair   nginx `return 200` (the HTTP ceiling) and modelgate serving the digits demo
#               model (KServe v2 JSON), both driven by wrk -t2 -c64 --latency.
#               Target: modelgate >= 0.80 x nginx requests/s, p99 no worse than nginx's.
#               The batch-size histogram of the opportunistic batcher (requests per Run,
#               /metrics modelgate_batch_requests) is read from the digits server afterwards.
#   prev        the previous commit's modelgate (BENCH_PREV_COMMIT, default HEAD~1), built in a
#               git worktree under bench/out/prev/ (kept and reused while the commit is the
#               same), serving digits as a third column of the HTTP pair's alternation:
#               a regression shows as this build / previous build < 1.
#   one         digits and nginx at one connection (wrk -t1 -c1), alternated: p50 and p99.
#               Target: modelgate p50 <= 1.15 x nginx's p50. Also the Run's own time a request, from
#               the server's metrics, and the ratio nginx's p50 plus that time alone would give.
#   routed      modelgate with an 18,000-rule route table and a 90/10 weighted split on digits,
#               requests to one of the table's URLs, measured in the same alternation as the
#               HTTP pair; then once more while the policy is replaced 100 times a second.
#               Target: >= 0.75 x nginx requests/s, p99 <= 2.73 ms, no failed request, and
#               p99 under updates within 10 % of p99 without.
#   micro       bench_route_bench (1, 1,000, 18,000 rules, indexed vs linear),
#               bench_policy_bench and bench_breaker_bench (a closed breaker's cost per
#               request, 1 and 2 threads, against one shared counter), printed as they report.
#   obs pair    digits as above on two modelgates: one with metrics on and traces sampled at 1 %
#               exported over OTLP/HTTP to a collector stub (nginx answering 200), one with
#               --metrics off and no tracing; same alternation. Target: cost <= 3 %
#               (on / off >= 0.97 requests/s).
#   swap        bench/swap.py: modelgate in poll mode serving digits (latest 1) under wrk -t2
#               -c32; BENCH_SWAPS (20) new versions renamed into the repository one after
#               another. Target: 0 failed requests out of >= 50,000, p99 during the swaps
#               <= 2x the steady p99 of the same run (BENCH_DURATION s without swaps first).
#   CNN pair    bench_ort_raw (ONNX Runtime alone, 2 threads calling Run) and modelgate
#               serving the benchmark CNN (KServe v2 binary extension), wrk -t2 -c4.
#               Target: modelgate >= 0.90 x raw ONNX Runtime items/s. Then health requests
#               (wrk -t1 -c1 /v2/health/live) on the same server while the CNN runs at
#               BENCH_CNN_CONNS connections. Target: health p99 <= 5 ms. With nginx in the
#               parts, the same bodies are also sent to nginx (which reads and drops them) and
#               the machine's CPU per request is measured: the share of the machine the bodies
#               alone take at raw ORT's rate bounds the ratio from above (cnn wire).
#   drain       SIGTERM while wrk -t2 -c64 drives a slow model (scripts/gen_slow_model.py,
#               tens of ms per Run): every request sent on an accepted connection is answered
#               (wrk: no read error, timeout or non-2xx; wrk reports its reconnects refused
#               after the listeners closed as connect/write errors, which are expected) and the
#               process exits 0.
#   grpc        the digits server also on gRPC (--grpc-listen): bench_grpc_load (bench/grpc_load.c,
#               gRPC core's C API) sends ModelInfer with raw_input_contents, 64 calls in flight
#               on 2 threads, measured in the same alternation as the HTTP digits runs.
#               Target: gRPC >= 0.80 x HTTP requests/s.
#   cnn_grpc    the CNN over gRPC the same way, BENCH_CNN_CONNS calls in flight, alternated with
#               the raw ONNX Runtime runs. Target: >= 0.90 x raw ONNX Runtime items/s.
#   fleet       bench/fleet_bench.py: a real etcd and three instances; BENCH_FLEET_CHANGES (20)
#               weight changes with `ctl --etcd`, each timed per instance from the write's answer
#               to the first request routed by it. Target: every one within 250 ms.
#   overload    bench/overload.py: a slow model on the execution pool at 4x the rate it can
#               serve, open loop. Targets: accepted p99 <= 2 x unloaded p99, 503 p99 <= 1 ms,
#               RSS flat.
#
# Both sides of a pair are up at once and measured alternately, run by run (A1 B1 A2 B2 ...),
# so whatever else loads the machine hits both alike; a pair's ratio is the median of its
# per-run ratios, throughputs and p99s are medians over the runs. A summary block is printed
# and saved to bench/out/summary.txt (appended to bench/out/history.txt); every raw wrk and
# driver output and every server log is kept in bench/out/ (git-ignored).
#
# Environment knobs (defaults in brackets):
#   BENCH_PARTS          parts to run, comma-separated [nginx,digits,prev,one,grpc,routed,micro,obs,swap,ort,cnn,cnn_grpc,shm,drain,fleet,overload]
#   BENCH_PREV_COMMIT    the build the prev part compares against [HEAD~1]
#   BENCH_SHM_CYCLES     register / infer / unregister cycles of the shm soak [10000]
#   BENCH_FLEET_CHANGES  weight changes the fleet part times [20]
#   BENCH_SWAPS          versions swapped in by the swap part [20]
#   BENCH_DURATION       seconds per measured run [10]
#   BENCH_WARMUP         seconds of warm-up load per server before measuring [2]
#   BENCH_REPEAT         measured runs per part [3] (single 10 s runs swing by +-20% on a
#                        shared 2-core VM)
#   BENCH_THREADS        modelgate --threads, nginx worker_processes, wrk -t, Run callers [2]
#   BENCH_CONNS          wrk connections for the HTTP pair [64]
#   BENCH_CNN_CONNS      wrk connections for the CNN [4]
#   BENCH_CNN_WIDTH      scripts/gen_cnn.py --width: channel multiplier of the CNN [1]
#   BENCH_READY_TIMEOUT  seconds a server gets to answer its readiness URL [60]
#   BENCH_STRICT=1       exit 1 when a target is missed (default: report only)
#   BENCH_MG_ARGS        extra `modelgate serve` flags, e.g. "--ort-threads 1" []
# Exits 1 with a clear message when a tool is missing, a server does not become ready, a
# smoke request fails, or a run has non-2xx responses or socket errors.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ne 1 ]; then
    echo "usage: bash bench/run.sh BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd) || { echo "bench: no build directory $1" >&2; exit 2; }
cd "$ROOT"

PY=/usr/bin/python3 # Debian's: python3-onnx and python3-numpy live there
PARTS=${BENCH_PARTS:-nginx,digits,prev,one,grpc,routed,micro,obs,swap,ort,cnn,cnn_grpc,shm,drain,fleet,overload}
PREV_COMMIT=${BENCH_PREV_COMMIT:-HEAD~1}
SHM_CYCLES=${BENCH_SHM_CYCLES:-10000}
FLEET_CHANGES=${BENCH_FLEET_CHANGES:-20}
SWAPS=${BENCH_SWAPS:-20}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
REPEAT=${BENCH_REPEAT:-3}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
CNN_CONNS=${BENCH_CNN_CONNS:-4}
CNN_WIDTH=${BENCH_CNN_WIDTH:-1}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-60}
STRICT=${BENCH_STRICT:-0}
read -r -a MG_ARGS <<<"${BENCH_MG_ARGS:-}"
MODELGATE=$BUILD/modelgate
DIGITS_REPO=$ROOT/models
SAMPLE=$DIGITS_REPO/digits/sample.json
CNN_REPO=$ROOT/bench/models
CNN_BATCH=1
OUT=$ROOT/bench/out

mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/modelgate-bench.XXXXXX)

# Results: per-run values (space-separated) and their medians; the summary prints whatever is
# there, also when a later part fails.
R_NGINX="" R_NGINX_P99="" R_DIGITS="" R_DIGITS_P99="" R_HTTP_RATIO=""
R_ROUTED="" R_ROUTED_P99="" R_ROUTED_RATIO="" R_UPD="" R_UPD_P99="" UPDATES_DONE=""
R_ORT="" R_ORT_MS="" R_CNN="" R_CNN_P99="" R_CNN_RATIO="" R_WIRE_US=""
R_GRPC="" R_GRPC_P99="" R_GRPC_RATIO="" R_CNN_GRPC="" R_CNN_GRPC_P99="" R_CNN_GRPC_RATIO=""
R_OBS_ON="" R_OBS_OFF="" R_OBS_RATIO="" R_OBS_ON_P99="" R_OBS_OFF_P99="" OBS_SPANS=""
R_OBS_ON_CPU="" R_OBS_OFF_CPU="" R_OBS_CPU_RATIO="" OBS_INSTR=""
CNN_MFLOPS=""
R_PREV="" R_PREV_P99="" R_PREV_RATIO="" PREV_DESC=""
R_ONE_NG_P50="" R_ONE_NG_P99="" R_ONE_MG_P50="" R_ONE_MG_P99="" R_ONE_RATIO="" R_ONE_RUN_US=""
R_HEALTH_P99="" R_HEALTH_CNN="" BATCH_HIST=""
R_DRAIN=""
R_FLEET=""
R_SWAP="" # bench/swap.py's JSON line
R_SHM=""  # bench/shm.py's JSON line
MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"
MACHINE+=" $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r)"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

SERVER_PIDS=()
CHILD=""

# ---------------------------------------------------------------------------------------------
# Process handling

# stop_pid PID: TERM, up to 5 s grace, then KILL (its children too).
stop_pid() {
    local pid=$1 kids k i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: pid $pid ignored SIGTERM for 5 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
    SERVER_PIDS=()
}

cleanup() {
    [ -n "$CHILD" ] && stop_pid "$CHILD"
    stop_servers
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# run_child OUT CMD...: runs a load generator or driver with its output in OUT. In the
# background plus `wait`, so SIGINT/SIGTERM interrupt the script at once, not after CMD ends.
# shellcheck disable=SC2317  # reached through callers shellcheck loses track of after die()
run_child() {
    local out=$1 rc=0
    shift
    "$@" >"$out" 2>&1 &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

die() {
    echo "bench: ERROR: $*" >&2
    echo "bench: results so far:" >&2
    summary >&2 || true
    exit 1
}

want() { [[ ",$PARTS," == *",$1,"* ]]; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready URL PID LOG NAME: polls URL until it answers 200; dies if PID exits or time runs out.
wait_ready() {
    local url=$1 pid=$2 log=$3 name=$4 code deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: $name exited before it was ready; last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            die "$name did not start"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [ "$code" = 200 ] && return 0
        if ((SECONDS >= deadline)); then
            echo "bench: $name: last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            die "$name did not answer 200 on $url within ${READY_TIMEOUT} s (last status '$code')"
        fi
        sleep 0.2
    done
}

# start_modelgate NAME REPO [GRPC [ARGS...]]: starts the daemon on a free port (and, with
# GRPC=1, gRPC on another: MG_GRPC_TARGET; ARGS after BENCH_MG_ARGS) and waits until it is
# ready; sets MG_URL to its base URL.
start_modelgate() {
    local name=$1 repo=$2 port log=$OUT/modelgate-$1.log bin=${MG_BIN_OVERRIDE:-$MODELGATE}
    local -a grpc=()
    [ -x "$bin" ] || die "no modelgate binary at $bin (build first: make build)"
    port=$(free_port)
    if [ "${3:-0}" = 1 ]; then
        MG_GRPC_TARGET=127.0.0.1:$(free_port)
        grpc=(--grpc-listen "$MG_GRPC_TARGET")
    fi
    shift $(($# < 3 ? $# : 3))
    echo "bench: $name: $bin serve --repo $repo --listen 127.0.0.1:$port --threads $THREADS ${grpc[*]} ${MG_ARGS[*]} $*" >&2
    "$bin" serve --repo "$repo" --listen "127.0.0.1:$port" --threads "$THREADS" "${grpc[@]}" "${MG_ARGS[@]}" "$@" >"$log" 2>&1 &
    SERVER_PIDS+=("$!")
    wait_ready "http://127.0.0.1:$port/v2/health/ready" "$!" "$log" "modelgate ($name)"
    echo "bench: $name: modelgate ready (pid $!)" >&2
    MG_URL=http://127.0.0.1:$port
}

# build_prev: the previous commit's daemon (PREV_COMMIT) in PREV_BIN, built once per commit in a
# git worktree under bench/out/prev/ (so it works on a fresh machine: only git and the set-up).
build_prev() {
    local commit dir=$OUT/prev log=$OUT/prev-build.log
    commit=$(git -C "$ROOT" rev-parse --verify "$PREV_COMMIT^{commit}" 2>/dev/null) ||
        die "prev: $PREV_COMMIT is not a commit of $ROOT (set BENCH_PREV_COMMIT or leave out the prev part)"
    PREV_DESC="previous build (commit $(git -C "$ROOT" rev-parse --short "$commit"))"
    PREV_BIN=$dir/build/modelgate
    if [ -x "$PREV_BIN" ] && [ "$(cat "$dir/commit" 2>/dev/null)" = "$commit" ]; then
        echo "bench: prev: reusing $PREV_BIN ($commit)"
        return 0
    fi
    echo "bench: prev: building $commit in $dir (log: $log)"
    rm -rf "$dir"
    git -C "$ROOT" worktree prune
    git -C "$ROOT" worktree add --detach "$dir/src" "$commit" >"$log" 2>&1 ||
        die "prev: git worktree add failed: $(tail -n 5 "$log")"
    [ -e "$ROOT/third_party" ] && ln -s "$(readlink -f "$ROOT/third_party")" "$dir/src/third_party"
    { cmake -S "$dir/src" -B "$dir/build" -DMG_FAULTS=OFF &&
        cmake --build "$dir/build" -j "$(nproc)" --target modelgate; } >>"$log" 2>&1 ||
        die "prev: building $commit failed: $(tail -n 5 "$log")"
    echo "$commit" >"$dir/commit"
}

# batch_hist URL MODEL VERSION: the requests-per-Run histogram of one series from /metrics.
batch_hist() {
    curl -sf "$1/metrics" | "$PY" -c '
import re, sys
model, version = sys.argv[1], sys.argv[2]
b, count, total = {}, 0, 0
for line in sys.stdin:
    m = re.match(r"modelgate_batch_requests_(bucket|sum|count)\{(.*)\} (\S+)$", line)
    if not m or "model=\"%s\"" % model not in m.group(2) or "version=\"%s\"" % version not in m.group(2):
        continue
    v = float(m.group(3))
    if m.group(1) == "bucket":
        b[re.search(r"le=\"([^\"]+)\"", m.group(2)).group(1)] = v
    elif m.group(1) == "sum":
        total = v
    else:
        count = v
if not count:
    print("no Runs recorded"); sys.exit()
prev, parts = 0, []
for le in ("1", "2", "4", "8", "16", "32", "64", "+Inf"):
    parts.append("<=%s %.1f%%" % (le, 100 * (b.get(le, prev) - prev) / count))
    prev = b.get(le, prev)
print("%d Runs, %d requests, %.1f requests per Run; Runs by requests held: %s" %
      (count, total, total / count, ", ".join(parts)))' "$2" "$3"
}

# series_sum URL NAME MODEL VERSION: the value of counter NAME{model,version} on /metrics.
series_sum() {
    curl -sf "$1/metrics" | awk -v n="$2" -v m="model=\"$3\"" -v v="version=\"$4\"" '
        index($0, n "{") == 1 && index($0, m) && index($0, v) { s += $NF }
        END { printf "%.0f\n", s }'
}

# ---------------------------------------------------------------------------------------------
# Measuring

# wrk_field FILE FIELD: rps | p99_ms | p50_ms | non2xx | sockerr from a wrk --latency output.
wrk_field() {
    awk -v want="$2" '
        function ms(v,   n, u) {
            n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000; if (u == "ms") return n + 0
            if (u == "s") return n * 1000; if (u == "m") return n * 60000; return n
        }
        /^Requests\/sec:/ { rps = $2 }
        /^ +50% / { p50 = ms($2) }
        /^ +99% / { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(/,/, ""); sockerr = $4 + $6 + $8 + $10 }
        END {
            if (want == "rps") print rps; else if (want == "p99_ms") print p99
            else if (want == "p50_ms") print p50; else if (want == "non2xx") print non2xx + 0
            else if (want == "sockerr") print sockerr + 0
        }' "$1"
}

# wrk_part PART OUT SECONDS CHECK: one wrk run of PART (nginx | digits | cnn) into OUT; CHECK=1
# counts non-200 responses exactly (slower; warm-up only). Dies on non-2xx or socket errors.
wrk_part() {
    local part=$1 out=$2 secs=$3 check=$4 bad
    local -a cmd=(wrk -t"$THREADS" -d"${secs}s" --latency)
    case $part in
    nginx) cmd+=(-c"$CONNS" "$NGINX_URL/") ;;
    digits) cmd+=(-c"$CONNS" -s "$ROOT/bench/digits.lua" "$DIGITS_URL" -- "$SAMPLE") ;;
    prev) cmd+=(-c"$CONNS" -s "$ROOT/bench/digits.lua" "$PREV_URL" -- "$SAMPLE") ;;
    nginx-one) cmd=(wrk -t1 -c1 -d"${secs}s" --latency "$NGINX_URL/") ;;
    digits-one) cmd=(wrk -t1 -c1 -d"${secs}s" --latency -s "$ROOT/bench/digits.lua" "$DIGITS_URL" -- "$SAMPLE") ;;
    health) cmd=(wrk -t1 -c1 -d"${secs}s" --latency "$CNN_URL/v2/health/live") ;;
    routed) cmd+=(-c"$CONNS" -s "$ROOT/bench/digits.lua" "$ROUTED_URL" -- "$SAMPLE" "$ROUTED_PATH" "$ROUTED_HOST") ;;
    cnn) cmd+=(-c"$CNN_CONNS" -s "$ROOT/bench/cnn_binary.lua" "$CNN_URL") ;;
    cnn-wire) cmd+=(-c"$CNN_CONNS" -s "$ROOT/bench/cnn_binary.lua" "$NGINX_URL/v2/models/cnn/infer") ;;
    obs-on) cmd+=(-c"$CONNS" -s "$ROOT/bench/digits.lua" "$OBS_ON_URL" -- "$SAMPLE") ;;
    obs-off) cmd+=(-c"$CONNS" -s "$ROOT/bench/digits.lua" "$OBS_OFF_URL" -- "$SAMPLE") ;;
    esac
    echo "bench: $part: ${cmd[*]}"
    run_child "$out" env MG_BENCH_CHECK="$check" "${cmd[@]}" ||
        die "$part: wrk failed: $(tail -n 5 "$out")"
    [ -n "$(wrk_field "$out" rps)" ] || die "$part: no Requests/sec in $out: $(tail -n 5 "$out")"
    bad=$(($(wrk_field "$out" non2xx) + $(wrk_field "$out" sockerr)))
    if ((bad > 0)) || grep -q '^non-200 responses: [1-9]' "$out"; then
        cat "$out" >&2
        die "$part: non-2xx responses or socket errors (see above; kept in $out)"
    fi
}

# start_nginx: nginx `return 200` (worker_processes $THREADS) on a free port: NGINX_URL.
start_nginx() {
    local port
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$NGINX" ] || die "nginx not found (run: make setup)"
    port=$(free_port)
    rm -rf "$TMP/nginx"
    mkdir -p "$TMP/nginx"
    # keepalive_requests: nginx (>= 1.19.10) closes a connection after 1000 requests by
    # default; h2o keeps it open, so the baseline does too and wrk never reconnects.
    cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $THREADS;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "ok"; }
    }
}
EOF
    cp "$TMP/nginx/nginx.conf" "$OUT/nginx.conf"
    : >"$OUT/nginx-error.log"
    echo "bench: nginx: worker_processes $THREADS on 127.0.0.1:$port"
    "$NGINX" -e "$OUT/nginx-error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
        >"$OUT/nginx-stderr.log" 2>&1 &
    SERVER_PIDS+=("$!")
    NGINX_URL=http://127.0.0.1:$port
    wait_ready "$NGINX_URL/" "$!" "$OUT/nginx-error.log" nginx
}

# machine_busy: the jiffies all CPUs have spent busy (user, nice, system, irq, softirq).
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# ort_run OUT: one bench_ort_raw run on the CNN into OUT.
ort_run() {
    echo "bench: ort: $ORT_RAW cnn --seconds $DURATION --warmup $WARMUP --threads $THREADS --batch $CNN_BATCH"
    run_child "$1" "$ORT_RAW" "$CNN_REPO/cnn/1/model.onnx" --seconds "$DURATION" \
        --warmup "$WARMUP" --threads "$THREADS" --batch "$CNN_BATCH" ||
        die "ort_raw failed: $(tail -n 5 "$1")"
    grep -q '^ort_raw: items_per_s=' "$1" || die "ort_raw printed no result: $(tail -n 5 "$1")"
}

# grpc_run OUT TARGET MODEL SHAPE RAW CALLS SECONDS: one bench_grpc_load run into OUT.
grpc_run() {
    local -a cmd=("$GRPC_LOAD" --target "$2" --model "$3" --input input --datatype FP32 --shape "$4"
        --raw "$5" --concurrency "$6" --threads "$THREADS" --seconds "$7" --warmup 0)
    echo "bench: grpc: ${cmd[*]}"
    run_child "$1" "${cmd[@]}" || die "grpc_load failed: $(tail -n 5 "$1")"
    grep -q '^grpc_load: rps=.* errors=0 ' "$1" || die "grpc_load: failed calls: $(tail -n 5 "$1")"
}

grpc_field() { sed -n "s/^grpc_load: .*\b$2=\([0-9.]*\).*/\1/p" "$1"; }

ort_field() { sed -n "s/^ort_raw: items_per_s=.* $2=\\([0-9.]*\\).*/\\1/p; s/^ort_raw: $2=\\([0-9.]*\\).*/\\1/p" "$1"; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "" }'; }
r2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
# med FORMAT LIST DEFAULT: the median of the space-separated LIST printed with FORMAT, or DEFAULT.
# shellcheck disable=SC2086  # LIST is meant to split
med() { if [ -n "$2" ]; then awk -v a="$(median $2)" -v f="$1" 'BEGIN { printf f, a }'; else echo "$3"; fi; }

# shellcheck disable=SC2086  # the R_* lists are meant to split
summary() {
    local ng dg ratio v o c
    echo "modelgate benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit $COMMIT"
    echo "machine      : $MACHINE"
    echo "load         : modelgate --threads $THREADS, nginx worker_processes $THREADS, wrk -t$THREADS;" \
        "$REPEAT alternating runs of ${DURATION} s after ${WARMUP} s warm-up; medians; loopback"
    ng="nginx $(med %.0f "$R_NGINX" "not run") rps p99 $(med %.2f "$R_NGINX_P99" '?') ms"
    dg="modelgate $(med %.0f "$R_DIGITS" "not run") rps p99 $(med %.2f "$R_DIGITS_P99" '?') ms"
    if [ -n "$R_HTTP_RATIO" ]; then
        ratio=$(median $R_HTTP_RATIO)
        v=$(verdict "$ratio >= 0.80 && $(median $R_DIGITS_P99) <= $(median $R_NGINX_P99)")
        echo "digits JSON  : $dg | $ng | ratio $(r2 "$ratio") (target >= 0.80, p99 <= nginx's) $v"
    else
        echo "digits JSON  : $dg | $ng | ratio n/a"
    fi
    if [ -n "$R_PREV_RATIO" ]; then
        echo "previous     : $PREV_DESC $(med %.0f "$R_PREV" '?') rps p99 $(med %.2f "$R_PREV_P99" '?') ms | this build / previous $(med %.3f "$R_PREV_RATIO" '?') (runs [${R_PREV_RATIO}])"
    fi
    if [ -n "$BATCH_HIST" ]; then
        echo "batching     : digits requests per Run after the runs above: $BATCH_HIST"
    fi
    if [ -n "$R_ONE_RATIO" ]; then
        ratio=$(median $R_ONE_RATIO)
        v=$(verdict "$ratio <= 1.15")
        echo "one conn     : modelgate p50 $(med %.3f "$R_ONE_MG_P50" '?') ms p99 $(med %.3f "$R_ONE_MG_P99" '?') ms | nginx p50 $(med %.3f "$R_ONE_NG_P50" '?') ms p99 $(med %.3f "$R_ONE_NG_P99" '?') ms | p50 ratio $(r2 "$ratio") (target <= 1.15) $v"
        if [ -n "$R_ONE_RUN_US" ]; then
            # nginx's p50 plus the model's Run alone: a server that does nothing else but run
            # the model per request waits at least this long.
            floor=$(awk -v ng="$(median $R_ONE_NG_P50)" -v us="$(median $R_ONE_RUN_US)" \
                'BEGIN { if (ng > 0) printf "%.2f", (ng * 1000 + us) / (ng * 1000) }')
            echo "one conn run : ONNX Runtime's Run alone $(med %.1f "$R_ONE_RUN_US" '?') us a request (server metrics), so the p50 ratio is at least $floor on this machine"
        fi
    fi
    if [ -n "$R_GRPC_RATIO" ]; then
        ratio=$(median $R_GRPC_RATIO)
        v=$(verdict "$ratio >= 0.80")
        echo "digits gRPC  : modelgate $(med %.0f "$R_GRPC" '?') rps p99 $(med %.2f "$R_GRPC_P99" '?') ms (raw contents, 64 calls) | HTTP JSON above | ratio $(r2 "$ratio") (target >= 0.80) $v"
    fi
    if [ -n "$R_ROUTED_RATIO" ]; then
        ratio=$(median $R_ROUTED_RATIO)
        v=$(verdict "$ratio >= 0.75 && $(median $R_ROUTED_P99) <= 2.73")
        echo "routed 18k   : modelgate $(med %.0f "$R_ROUTED" '?') rps p99 $(med %.2f "$R_ROUTED_P99" '?') ms | $ng | ratio $(r2 "$ratio") (target >= 0.75, p99 <= 2.73 ms) $v"
    fi
    if [ -n "$R_UPD" ]; then
        local change
        change=$(awk -v a="$(median $R_UPD_P99)" -v b="$(median $R_ROUTED_P99)" 'BEGIN { printf "%+.1f", (a / b - 1) * 100 }')
        v=$(verdict "$change <= 10")
        echo "updates      : $UPDATES_DONE policy updates at 100/s during load, 0 failed | modelgate $(med %.0f "$R_UPD" '?') rps p99 $(med %.2f "$R_UPD_P99" '?') ms, p99 change $change % (target <= +10 %) $v"
    fi
    if [ -n "$R_OBS_RATIO" ]; then
        ratio=$(median $R_OBS_RATIO)
        v=$(verdict "$ratio >= 0.97")
        echo "observability: metrics on + traces at 1 % $(med %.0f "$R_OBS_ON" '?') rps p99 $(med %.2f "$R_OBS_ON_P99" '?') ms" \
            "(${OBS_SPANS:-?} spans exported) | both off $(med %.0f "$R_OBS_OFF" '?') rps p99 $(med %.2f "$R_OBS_OFF_P99" '?') ms" \
            "| ratio $(awk -v r="$ratio" 'BEGIN { printf "%.3f", r }') (target >= 0.97: cost <= 3 %) $v"
        echo "               daemon CPU per request: on $(med %.2f "$R_OBS_ON_CPU" '?') us, off $(med %.2f "$R_OBS_OFF_CPU" '?') us," \
            "ratio on/off $(med %.3f "$R_OBS_CPU_RATIO" '?') (runs [${R_OBS_CPU_RATIO}])"
        if [ -n "${OBS_INSTR:-}" ]; then
            echo "               instructions per request in the event loop (callgrind): $OBS_INSTR"
        fi
    fi
    if [ -n "$R_SWAP" ]; then
        "$PY" - "$R_SWAP" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
d, s, b = r["during"], r.get("steady", {}), r["bars"]
ok = all(b.values()) and r["swaps_live"] == r["swaps"]
print("swaps        : %d/%d versions live (go-live %.2f-%.2f s), %d failed of %d requests | p99 %.2f ms "
      "during swaps vs %.2f ms steady, ratio %.2f (target 0 failed of >= 50000, ratio <= 2) %s" %
      (r["swaps_live"], r["swaps"], r["go_live_secs"]["min"], r["go_live_secs"]["max"], d["failed"],
       d["requests"], d["p99_ms"], s.get("p99_ms") or 0, r.get("p99_ratio", 0), "met" if ok else "MISS"))
EOF
    fi
    if [ -n "$R_SHM" ]; then
        "$PY" - "$R_SHM" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
b, s0, s1 = r["bars"], r["soak"][0], r["soak"][-1]
print("shm cnn      : shared memory %.1f items/s | binary %.1f items/s | ratio %.2f (target >= 1) %s" %
      (r["shm_items_s"], r["binary_items_s"], r["ratio"], "met" if b["shm_not_slower"] else "MISS"))
print("shm soak     : %d cycles in %.1f s: RSS %d -> %d kB, fds %d -> %d, mappings %d -> %d (target flat) %s" %
      (r["cycles"], r["soak_secs"], s0["rss_kb"], s1["rss_kb"], s0["fds"], s1["fds"], s0["mappings"],
       s1["mappings"], "met" if b["rss_flat"] and b["fds_flat"] and b["mappings_flat"] else "MISS"))
EOF
    fi
    o="raw ORT $(med %.0f "$R_ORT" "not run") items/s ($(med %.3f "$R_ORT_MS" '?') ms per Run, $THREADS callers)"
    c="modelgate $(med %.0f "$R_CNN" "not run") items/s p99 $(med %.2f "$R_CNN_P99" '?') ms"
    if [ -n "$R_CNN_RATIO" ]; then
        ratio=$(median $R_CNN_RATIO)
        v=$(verdict "$ratio >= 0.90")
        echo "cnn binary   : $c | $o | ratio $(r2 "$ratio") (target >= 0.90) $v"
    else
        echo "cnn binary   : $c | $o | ratio n/a"
    fi
    if [ -n "$R_WIRE_US" ] && [ -n "$R_ORT" ]; then
        # At raw ORT's rate the bodies alone take this share of the machine; a server that
        # added nothing else could reach 1 / (1 + share) of raw ORT here.
        share=$(awk -v us="$(median $R_WIRE_US)" -v r="$(median $R_ORT)" -v n="$(nproc)" -v b="$CNN_BATCH" \
            'BEGIN { printf "%.3f", r / b * us / 1e6 / n }')
        echo "cnn wire     : nginx taking the same bodies: $(med %.0f "$R_WIRE_US" '?') us of machine CPU per request (wrk, kernel, nginx); at raw ORT's rate $(awk -v s="$share" 'BEGIN { printf "%.1f", s * 100 }') % of the $(nproc) cores, so the ratio can reach $(awk -v s="$share" 'BEGIN { printf "%.2f", 1 / (1 + s) }') at most on this machine (client and server share it)"
    fi
    if [ -n "$R_HEALTH_P99" ]; then
        v=$(verdict "$(median $R_HEALTH_P99) <= 5")
        echo "health+cnn   : /v2/health/live p99 $(med %.2f "$R_HEALTH_P99" '?') ms at one connection while the CNN runs at $CNN_CONNS connections ($(med %.0f "$R_HEALTH_CNN" '?') items/s meanwhile) (target <= 5 ms) $v"
    fi
    if [ -n "$R_CNN_GRPC_RATIO" ]; then
        ratio=$(median $R_CNN_GRPC_RATIO)
        v=$(verdict "$ratio >= 0.90")
        echo "cnn gRPC     : modelgate $(med %.0f "$R_CNN_GRPC" '?') items/s p99 $(med %.2f "$R_CNN_GRPC_P99" '?') ms (raw contents, $CNN_CONNS calls) | $o | ratio $(r2 "$ratio") (target >= 0.90) $v"
    fi
    if [ -n "$R_FLEET" ]; then
        local n within mx
        n=$(echo "$R_FLEET" | sed -n 's/.*samples=\([0-9]*\).*/\1/p')
        within=$(echo "$R_FLEET" | sed -n 's/.*within_250ms=\([0-9]*\).*/\1/p')
        mx=$(echo "$R_FLEET" | sed -n 's/.*max_ms=\([0-9.]*\).*/\1/p')
        v=$(verdict "$within == $n && $mx <= 250")
        echo "fleet etcd   : ${R_FLEET#fleet: } (target: all within 250 ms) $v"
    fi
    echo "runs         : nginx rps [${R_NGINX}] digits rps [${R_DIGITS}] ratios [${R_HTTP_RATIO}]"
    echo "               digits gRPC rps [${R_GRPC}] ratios [${R_GRPC_RATIO}]; cnn gRPC items/s [${R_CNN_GRPC}] ratios [${R_CNN_GRPC_RATIO}]"
    echo "               routed rps [${R_ROUTED}] ratios [${R_ROUTED_RATIO}] p99 [${R_ROUTED_P99}] with updates p99 [${R_UPD_P99}]"
    echo "               raw ORT items/s [${R_ORT}] cnn items/s [${R_CNN}] ratios [${R_CNN_RATIO}]"
    echo "               obs on rps [${R_OBS_ON}] off rps [${R_OBS_OFF}] ratios [${R_OBS_RATIO}]"
    [ -n "$R_DRAIN" ] && echo "drain        : $R_DRAIN"
    echo "setup        : digits wrk -c$CONNS (models/digits/sample.json, default version);" \
        "cnn batch $CNN_BATCH, wrk -c$CNN_CONNS, width $CNN_WIDTH, ${CNN_MFLOPS:-?} MFLOPs/item"
}

# ---------------------------------------------------------------------------------------------
for tool in wrk curl awk pgrep; do
    command -v "$tool" >/dev/null || die "$tool not found (run: make setup)"
done
[ -x "$PY" ] || die "$PY not found (run: make setup)"
echo "bench: machine: $MACHINE"
echo "bench: outputs in $OUT"

if want grpc || want cnn_grpc; then
    GRPC_LOAD=$BUILD/bench_grpc_load
    [ -x "$GRPC_LOAD" ] || die "no $GRPC_LOAD (build first: make build)"
fi
if want grpc && ! want digits; then
    die "the grpc part runs against the digits server: add digits to BENCH_PARTS"
fi
if want cnn_grpc && ! want ort; then
    die "the cnn_grpc part is measured against raw ONNX Runtime: add ort to BENCH_PARTS"
fi

# 1. HTTP pair: nginx and modelgate/digits --------------------------------------------------------
if want nginx || want digits || want routed; then
    rm -f "$OUT"/nginx.*wrk.txt "$OUT"/digits.*wrk.txt "$OUT"/routed.*wrk.txt "$OUT"/updates.*
    if want nginx; then
        start_nginx
    fi
    if want digits; then
        [ -f "$SAMPLE" ] || die "no $SAMPLE (run: make models)"
        start_modelgate digits "$DIGITS_REPO" "$(want grpc && echo 1)"
        DIGITS_URL=$MG_URL
        DIGITS_GRPC=${MG_GRPC_TARGET:-}
        # Smoke: one request must give 200 and a 10-class distribution.
        "$PY" - "$DIGITS_URL" "$SAMPLE" "$DIGITS_REPO/digits/sample_label.txt" <<'EOF' || die "digits: smoke request failed"
import json, sys, urllib.error, urllib.request
url, sample, label_file = sys.argv[1:4]
req = urllib.request.Request(url + "/v2/models/digits/infer", data=open(sample, "rb").read(),
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        status, text = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode(errors="replace")
if status != 200:
    sys.exit(f"bench: digits: smoke request: HTTP {status}: {text[:500]}")
resp = json.loads(text)
probs = {o["name"]: o for o in resp["outputs"]}["probabilities"]["data"]
if len(probs) != 10:
    sys.exit(f"bench: digits: smoke request: expected 10 probabilities, got {len(probs)}: {text[:500]}")
label = int(open(label_file).read())
pred = max(range(10), key=lambda k: probs[k])
print(f"bench: digits: smoke ok: predicted {pred} (label {label}), p={probs[pred]:.4f}, "
      f"model_version {resp.get('model_version', '?')}")
EOF
    fi
    if want routed; then
        start_modelgate routed "$DIGITS_REPO"
        ROUTED_URL=$MG_URL
        ROUTE_BENCH=$BUILD/bench_route_bench
        [ -x "$ROUTE_BENCH" ] || die "no $ROUTE_BENCH (build first: make build)"
        run_child "$OUT/route_table.txt" "$ROUTE_BENCH" --write-table "$TMP/routes.json" --seconds 0.2 ||
            die "bench_route_bench --write-table failed"
        curl -sf -X PUT --data-binary @"$TMP/routes.json" "$ROUTED_URL/v2/admin/routes" >"$OUT/routed.put.txt" ||
            die "routed: PUT /v2/admin/routes failed: $(cat "$OUT/routed.put.txt")"
        curl -sf -X PUT -d '{"weights":{"1":90,"2":10},"stable":"1"}' \
            "$ROUTED_URL/v2/admin/models/digits/traffic" >/dev/null || die "routed: PUT traffic failed"
        # A URL in the middle of the table: exact host, path prefix, no header condition.
        read -r ROUTED_HOST ROUTED_PATH ROUTED_RULE < <("$PY" bench/pick_route.py "$TMP/routes.json")
        hdrs=$(curl -s -o /dev/null -D - -H "Host: $ROUTED_HOST" -H "X-Route-Explain: 1" --data-binary @"$SAMPLE" \
            "$ROUTED_URL$ROUTED_PATH" | tr -d '\r')
        echo "$hdrs" | grep -qi "^x-route-explain: rule=$ROUTED_RULE policy=admin" ||
            die "routed: $ROUTED_PATH (host $ROUTED_HOST) was not routed by rule $ROUTED_RULE: $hdrs"
        echo "bench: routed: $(cat "$OUT/routed.put.txt"); requests to http://$ROUTED_HOST$ROUTED_PATH (rule $ROUTED_RULE), digits 90/10"
    fi
    want nginx && wrk_part nginx "$OUT/nginx.warmup.wrk.txt" "$WARMUP" 1
    want digits && wrk_part digits "$OUT/digits.warmup.wrk.txt" "$WARMUP" 1
    if want grpc; then
        "$PY" -c 'import json, struct, sys
px = json.load(open(sys.argv[1]))["inputs"][0]["data"]
open(sys.argv[2], "wb").write(struct.pack("<64f", *px))' "$SAMPLE" "$TMP/digits.raw"
        grpc_run "$OUT/grpc.warmup.txt" "$DIGITS_GRPC" digits 1,64 "$TMP/digits.raw" "$CONNS" "$WARMUP"
        echo "bench: grpc: smoke and warm-up ok: $(grep '^grpc_load: rps=' "$OUT/grpc.warmup.txt")"
    fi
    want routed && wrk_part routed "$OUT/routed.warmup.wrk.txt" "$WARMUP" 1
    if want prev && want digits; then
        build_prev
        MG_BIN_OVERRIDE=$PREV_BIN start_modelgate prev "$DIGITS_REPO"
        PREV_URL=$MG_URL
        wrk_part prev "$OUT/prev.warmup.wrk.txt" "$WARMUP" 1
    fi
    for i in $(seq "$REPEAT"); do
        if want nginx; then
            f=$OUT/nginx.run$i.wrk.txt
            wrk_part nginx "$f" "$DURATION" 0
            R_NGINX="${R_NGINX:+$R_NGINX }$(wrk_field "$f" rps)"
            R_NGINX_P99="${R_NGINX_P99:+$R_NGINX_P99 }$(wrk_field "$f" p99_ms)"
            echo "bench: nginx: run $i/$REPEAT: $(wrk_field "$f" rps) req/s, p99 $(wrk_field "$f" p99_ms) ms"
        fi
        if want digits; then
            f=$OUT/digits.run$i.wrk.txt
            wrk_part digits "$f" "$DURATION" 0
            R_DIGITS="${R_DIGITS:+$R_DIGITS }$(wrk_field "$f" rps)"
            R_DIGITS_P99="${R_DIGITS_P99:+$R_DIGITS_P99 }$(wrk_field "$f" p99_ms)"
            echo "bench: digits: run $i/$REPEAT: $(wrk_field "$f" rps) req/s, p99 $(wrk_field "$f" p99_ms) ms"
        fi
        if want grpc; then
            f=$OUT/grpc.run$i.txt
            grpc_run "$f" "$DIGITS_GRPC" digits 1,64 "$TMP/digits.raw" "$CONNS" "$DURATION"
            R_GRPC="${R_GRPC:+$R_GRPC }$(grpc_field "$f" rps)"
            R_GRPC_P99="${R_GRPC_P99:+$R_GRPC_P99 }$(grpc_field "$f" p99_ms)"
            R_GRPC_RATIO="${R_GRPC_RATIO:+$R_GRPC_RATIO }$(div "$(grpc_field "$f" rps)" "$(wrk_field "$OUT/digits.run$i.wrk.txt" rps)")"
            echo "bench: grpc: run $i/$REPEAT: $(grpc_field "$f" rps) req/s, p99 $(grpc_field "$f" p99_ms) ms"
        fi
        if want prev && want digits; then
            f=$OUT/prev.run$i.wrk.txt
            wrk_part prev "$f" "$DURATION" 0
            R_PREV="${R_PREV:+$R_PREV }$(wrk_field "$f" rps)"
            R_PREV_P99="${R_PREV_P99:+$R_PREV_P99 }$(wrk_field "$f" p99_ms)"
            R_PREV_RATIO="${R_PREV_RATIO:+$R_PREV_RATIO }$(div "$(wrk_field "$OUT/digits.run$i.wrk.txt" rps)" "$(wrk_field "$f" rps)")"
            echo "bench: prev: run $i/$REPEAT: $(wrk_field "$f" rps) req/s, p99 $(wrk_field "$f" p99_ms) ms"
        fi
        if want nginx && want digits; then
            R_HTTP_RATIO="${R_HTTP_RATIO:+$R_HTTP_RATIO }$(div "$(wrk_field "$OUT/digits.run$i.wrk.txt" rps)" "$(wrk_field "$OUT/nginx.run$i.wrk.txt" rps)")"
        fi
        if want routed; then
            f=$OUT/routed.run$i.wrk.txt
            wrk_part routed "$f" "$DURATION" 0
            R_ROUTED="${R_ROUTED:+$R_ROUTED }$(wrk_field "$f" rps)"
            R_ROUTED_P99="${R_ROUTED_P99:+$R_ROUTED_P99 }$(wrk_field "$f" p99_ms)"
            echo "bench: routed: run $i/$REPEAT: $(wrk_field "$f" rps) req/s, p99 $(wrk_field "$f" p99_ms) ms"
            if want nginx; then
                R_ROUTED_RATIO="${R_ROUTED_RATIO:+$R_ROUTED_RATIO }$(div "$(wrk_field "$f" rps)" "$(wrk_field "$OUT/nginx.run$i.wrk.txt" rps)")"
            fi
        fi
    done
    if want digits; then
        BATCH_HIST=$(batch_hist "$DIGITS_URL" digits 2) || BATCH_HIST="(not read)"
        echo "bench: digits: batching: $BATCH_HIST"
    fi
    if want one && want nginx && want digits; then
        # One connection: what a lone client waits, nginx and modelgate alternated.
        for i in $(seq "$REPEAT"); do
            wrk_part nginx-one "$OUT/nginx-one.run$i.wrk.txt" "$DURATION" 0
            us0=$(series_sum "$DIGITS_URL" nv_inference_compute_infer_duration_us digits 2)
            n0=$(series_sum "$DIGITS_URL" nv_inference_request_success digits 2)
            wrk_part digits-one "$OUT/digits-one.run$i.wrk.txt" "$DURATION" 0
            us1=$(series_sum "$DIGITS_URL" nv_inference_compute_infer_duration_us digits 2)
            n1=$(series_sum "$DIGITS_URL" nv_inference_request_success digits 2)
            # Each request ran alone: the Run's own time per request, which no front end saves.
            R_ONE_RUN_US="${R_ONE_RUN_US:+$R_ONE_RUN_US }$(div "$((us1 - us0))" "$((n1 - n0))")"
            R_ONE_NG_P50="${R_ONE_NG_P50:+$R_ONE_NG_P50 }$(wrk_field "$OUT/nginx-one.run$i.wrk.txt" p50_ms)"
            R_ONE_NG_P99="${R_ONE_NG_P99:+$R_ONE_NG_P99 }$(wrk_field "$OUT/nginx-one.run$i.wrk.txt" p99_ms)"
            R_ONE_MG_P50="${R_ONE_MG_P50:+$R_ONE_MG_P50 }$(wrk_field "$OUT/digits-one.run$i.wrk.txt" p50_ms)"
            R_ONE_MG_P99="${R_ONE_MG_P99:+$R_ONE_MG_P99 }$(wrk_field "$OUT/digits-one.run$i.wrk.txt" p99_ms)"
            R_ONE_RATIO="${R_ONE_RATIO:+$R_ONE_RATIO }$(div "$(wrk_field "$OUT/digits-one.run$i.wrk.txt" p50_ms)" "$(wrk_field "$OUT/nginx-one.run$i.wrk.txt" p50_ms)")"
            echo "bench: one: run $i/$REPEAT: p50 modelgate $(wrk_field "$OUT/digits-one.run$i.wrk.txt" p50_ms) ms, nginx $(wrk_field "$OUT/nginx-one.run$i.wrk.txt" p50_ms) ms, Run ${R_ONE_RUN_US##* } us a request"
        done
    fi
    if want routed; then
        # The same load while a client replaces the policy 100 times a second (90/10 <-> 89/11).
        for i in $(seq "$REPEAT"); do
            "$PY" bench/policy_updater.py "$ROUTED_URL" "$OUT/updates.run$i.txt" &
            upd=$!
            f=$OUT/routed.updates$i.wrk.txt
            wrk_part routed "$f" "$DURATION" 0
            kill -TERM "$upd" 2>/dev/null || true
            wait "$upd" 2>/dev/null || true
            grep -q 'failed=0$' "$OUT/updates.run$i.txt" || die "routed: policy updates failed: $(cat "$OUT/updates.run$i.txt")"
            n=$(sed -n 's/updates=\([0-9]*\).*/\1/p' "$OUT/updates.run$i.txt")
            UPDATES_DONE=$((${UPDATES_DONE:-0} + n))
            R_UPD="${R_UPD:+$R_UPD }$(wrk_field "$f" rps)"
            R_UPD_P99="${R_UPD_P99:+$R_UPD_P99 }$(wrk_field "$f" p99_ms)"
            echo "bench: routed+updates: run $i/$REPEAT: $(wrk_field "$f" rps) req/s, p99 $(wrk_field "$f" p99_ms) ms, $n updates"
        done
    fi
    stop_servers
fi

# 2. Micro-benchmarks: routing decision and policy pick ---------------------------------------
if want micro; then
    for b in route_bench policy_bench breaker_bench; do
        [ -x "$BUILD/bench_$b" ] || die "no $BUILD/bench_$b (build first: make build)"
        echo "bench: $b"
        run_child "$OUT/$b.txt" "$BUILD/bench_$b" || die "bench_$b failed: $(tail -n 5 "$OUT/$b.txt")"
        cat "$OUT/$b.txt"
    done
fi

# 2b. Observability cost: metrics on and traces at 1 % vs both off ------------------------------
if want obs; then
    rm -f "$OUT"/obs-*.wrk.txt
    [ -f "$SAMPLE" ] || die "no $SAMPLE (run: make models)"
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$NGINX" ] || die "nginx not found (run: make setup)"
    # The collector stub: nginx answers every OTLP POST with 200 and discards the body, so the
    # exporter does all its real work (batch, encode, POST) and nothing else competes for CPU.
    port=$(free_port)
    mkdir -p "$TMP/otlp"
    cat >"$TMP/otlp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/otlp/nginx.pid;
error_log $OUT/otlp-stub-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $TMP/otlp/body;
    client_max_body_size 64m;
    server { listen 127.0.0.1:$port; location / { return 200 "{}"; } }
}
EOF
    "$NGINX" -e "$OUT/otlp-stub-error.log" -p "$TMP/otlp" -c "$TMP/otlp/nginx.conf" >"$OUT/otlp-stub.log" 2>&1 &
    SERVER_PIDS+=("$!")
    wait_ready "http://127.0.0.1:$port/" "$!" "$OUT/otlp-stub-error.log" "otlp stub"
    start_modelgate obs-on "$DIGITS_REPO" 0 --otlp-endpoint "http://127.0.0.1:$port/v1/traces" \
        --trace-sample-ratio 0.01
    OBS_ON_URL=$MG_URL OBS_ON_PID=${SERVER_PIDS[-1]}
    start_modelgate obs-off "$DIGITS_REPO" 0 --metrics off
    OBS_OFF_URL=$MG_URL OBS_OFF_PID=${SERVER_PIDS[-1]}
    # The daemon's CPU time per request as well as requests/s: on a machine others load, the
    # CPU a request costs moves much less than the throughput does.
    tick_us=$(awk -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 1e6 / t }')
    cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
    wrk_part obs-on "$OUT/obs-on.warmup.wrk.txt" "$WARMUP" 1
    wrk_part obs-off "$OUT/obs-off.warmup.wrk.txt" "$WARMUP" 1
    for i in $(seq "$REPEAT"); do
        for side in on off; do
            f=$OUT/obs-$side.run$i.wrk.txt
            pid=$OBS_ON_PID
            [ "$side" = off ] && pid=$OBS_OFF_PID
            t0=$(cpu_ticks "$pid")
            wrk_part "obs-$side" "$f" "$DURATION" 0
            t1=$(cpu_ticks "$pid")
            cpu=$(awk -v d=$((t1 - t0)) -v us="$tick_us" -v n="$(awk '/requests in/ { print $1 }' "$f")" \
                'BEGIN { if (n > 0) printf "%.2f", d * us / n }')
            if [ "$side" = on ]; then
                R_OBS_ON_CPU="${R_OBS_ON_CPU:+$R_OBS_ON_CPU }$cpu"
            else
                R_OBS_OFF_CPU="${R_OBS_OFF_CPU:+$R_OBS_OFF_CPU }$cpu"
            fi
            echo "bench: obs-$side: run $i/$REPEAT: $(wrk_field "$f" rps) req/s, p99 $(wrk_field "$f" p99_ms) ms, $cpu us CPU per request"
        done
        R_OBS_CPU_RATIO="${R_OBS_CPU_RATIO:+$R_OBS_CPU_RATIO }$(div "${R_OBS_ON_CPU##* }" "${R_OBS_OFF_CPU##* }")"
        R_OBS_ON="${R_OBS_ON:+$R_OBS_ON }$(wrk_field "$OUT/obs-on.run$i.wrk.txt" rps)"
        R_OBS_OFF="${R_OBS_OFF:+$R_OBS_OFF }$(wrk_field "$OUT/obs-off.run$i.wrk.txt" rps)"
        R_OBS_ON_P99="${R_OBS_ON_P99:+$R_OBS_ON_P99 }$(wrk_field "$OUT/obs-on.run$i.wrk.txt" p99_ms)"
        R_OBS_OFF_P99="${R_OBS_OFF_P99:+$R_OBS_OFF_P99 }$(wrk_field "$OUT/obs-off.run$i.wrk.txt" p99_ms)"
        R_OBS_RATIO="${R_OBS_RATIO:+$R_OBS_RATIO }$(div "${R_OBS_ON##* }" "${R_OBS_OFF##* }")"
    done
    if command -v valgrind >/dev/null; then
        # The same comparison in instructions (callgrind), which other load does not move.
        echo "bench: obs: counting instructions per request under callgrind (about 2 minutes)"
        run_child "$OUT/obs-instructions.txt" "$PY" bench/obs_instructions.py "$MODELGATE" "$DIGITS_REPO" ||
            die "obs: bench/obs_instructions.py failed: $(tail -n 5 "$OUT/obs-instructions.txt")"
        cat "$OUT/obs-instructions.txt"
        OBS_INSTR=$(sed -n 's/^obs_instructions: event loop instructions per request: //p' "$OUT/obs-instructions.txt")
    fi
    # Tracing really ran: spans reached the stub.
    OBS_SPANS=$(curl -s "$OBS_ON_URL/metrics" | awk '/^modelgate_trace_spans_exported_total / { print $2 }')
    [ "${OBS_SPANS:-0}" -gt 0 ] 2>/dev/null || die "obs: no span was exported (see $OUT/modelgate-obs-on.log)"
    stop_servers
fi

# 2c. Swaps under load: poll mode, versions renamed in one after another ----------------------------
if want swap; then
    echo "bench: swap: $SWAPS versions under wrk -t$THREADS -c32 (steady ${DURATION} s first)"
    R_SWAP=$("$PY" bench/swap.py --modelgate "$MODELGATE" --swaps "$SWAPS" --steady-secs "$DURATION" \
        --threads "$THREADS" --connections 32 --daemon-threads "$THREADS" --out "$OUT" | tail -n 1) ||
        die "swap: failed: $R_SWAP (see $OUT/swap-daemon.log)"
    echo "bench: swap: $R_SWAP"
fi

# 3. CNN pair: raw ONNX Runtime and modelgate/cnn -------------------------------------------------
if want ort || want cnn || want cnn_grpc || want shm; then
    rm -f "$OUT"/ort_raw*.txt "$OUT"/cnn.*wrk.txt "$OUT"/cnn_grpc.*
    gen=$("$PY" scripts/gen_cnn.py "$CNN_REPO" --width "$CNN_WIDTH") || die "scripts/gen_cnn.py failed"
    echo "bench: $gen"
    CNN_MFLOPS=$(echo "$gen" | sed -n 's/.*= \([0-9.]*\) MFLOPs.*/\1/p')
    if want ort; then
        ORT_RAW=$BUILD/bench_ort_raw
        if [ ! -x "$ORT_RAW" ]; then
            # Not built by CMake (older build dir): compile it against the bundled ONNX Runtime.
            ORT_LIB=$ROOT/third_party/onnxruntime/lib
            echo "bench: no $ORT_RAW; compiling bench/ort_raw.c"
            gcc -std=c11 -O2 -I"$ROOT/third_party/onnxruntime/include" bench/ort_raw.c \
                -L"$ORT_LIB" -Wl,-rpath,"$ORT_LIB" -lonnxruntime -lpthread -lm -o "$TMP/ort_raw" ||
                die "cannot build bench/ort_raw.c"
            ORT_RAW=$TMP/ort_raw
        fi
    fi
    if want cnn || want cnn_grpc; then
        start_modelgate cnn "$CNN_REPO" "$(want cnn_grpc && echo 1)"
        CNN_URL=$MG_URL
        CNN_GRPC=${MG_GRPC_TARGET:-}
        "$PY" - "$CNN_URL" <<'EOF' || die "cnn: smoke request failed"
import json, struct, sys, urllib.error, urllib.request
url = sys.argv[1]
n = 3 * 224 * 224
hdr = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32",
                              "parameters": {"binary_data_size": 4 * n}}],
                  "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]},
                 separators=(",", ":")).encode()
req = urllib.request.Request(url + "/v2/models/cnn/infer", data=hdr + struct.pack("<f", 0.5) * n,
                             headers={"Content-Type": "application/octet-stream",
                                      "Inference-Header-Content-Length": str(len(hdr))})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        body, hlen = r.read(), r.headers.get("Inference-Header-Content-Length")
except urllib.error.HTTPError as e:
    sys.exit(f"bench: cnn: smoke request: HTTP {e.code}: {e.read()[:500]!r}")
if hlen is None:
    sys.exit(f"bench: cnn: smoke request: no Inference-Header-Content-Length in the response: {body[:300]!r}")
hlen = int(hlen)
size = json.loads(body[:hlen])["outputs"][0]["parameters"]["binary_data_size"]
if size != 4000 or len(body) - hlen != 4000:
    sys.exit(f"bench: cnn: smoke request: expected 4000 bytes of probabilities; header says {size}, "
             f"body has {len(body) - hlen}")
probs = struct.unpack("<1000f", body[hlen:])
print(f"bench: cnn: smoke ok: 1000 probabilities summing to {sum(probs):.4f}")
EOF
        want cnn && wrk_part cnn "$OUT/cnn.warmup.wrk.txt" "$WARMUP" 1
        want cnn && want nginx && start_nginx
    fi
    if want cnn_grpc; then
        "$PY" -c 'import struct, sys; open(sys.argv[1], "wb").write(struct.pack("<f", 0.5) * (3 * 224 * 224))' "$TMP/cnn.raw"
        grpc_run "$OUT/cnn_grpc.warmup.txt" "$CNN_GRPC" cnn "$CNN_BATCH,3,224,224" "$TMP/cnn.raw" "$CNN_CONNS" "$WARMUP"
        echo "bench: cnn_grpc: smoke and warm-up ok: $(grep '^grpc_load: rps=' "$OUT/cnn_grpc.warmup.txt")"
    fi
    for i in $(seq "$REPEAT"); do
        if want ort; then
            f=$OUT/ort_raw.run$i.txt
            ort_run "$f"
            R_ORT="${R_ORT:+$R_ORT }$(ort_field "$f" items_per_s)"
            R_ORT_MS="${R_ORT_MS:+$R_ORT_MS }$(ort_field "$f" mean_ms)"
            echo "bench: ort: run $i/$REPEAT: $(grep '^ort_raw: items_per_s=' "$f" | cut -d' ' -f2-)"
        fi
        if want cnn; then
            f=$OUT/cnn.run$i.wrk.txt
            wrk_part cnn "$f" "$DURATION" 0
            R_CNN="${R_CNN:+$R_CNN }$(awk -v r="$(wrk_field "$f" rps)" -v b="$CNN_BATCH" 'BEGIN { printf "%.1f", r * b }')"
            R_CNN_P99="${R_CNN_P99:+$R_CNN_P99 }$(wrk_field "$f" p99_ms)"
            echo "bench: cnn: run $i/$REPEAT: $(wrk_field "$f" rps) req/s (batch $CNN_BATCH), p99 $(wrk_field "$f" p99_ms) ms"
        fi
        if want ort && want cnn; then
            R_CNN_RATIO="${R_CNN_RATIO:+$R_CNN_RATIO }$(div "${R_CNN##* }" "${R_ORT##* }")"
        fi
        if want nginx && want cnn; then
            # The same bodies to nginx, which reads and drops them: the machine's CPU per
            # request for sending and receiving them alone (wrk, the kernel, nginx).
            f=$OUT/cnn-wire.run$i.wrk.txt
            b0=$(machine_busy)
            wrk_part cnn-wire "$f" "$DURATION" 0
            b1=$(machine_busy)
            R_WIRE_US="${R_WIRE_US:+$R_WIRE_US }$(awk -v a="$b0" -v b="$b1" -v r="$(wrk_field "$f" rps)" \
                -v t="$DURATION" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / (r * t) }')"
            echo "bench: cnn-wire: run $i/$REPEAT: $(wrk_field "$f" rps) req/s into nginx, ${R_WIRE_US##* } us of machine CPU each"
        fi
        if want cnn_grpc; then
            f=$OUT/cnn_grpc.run$i.txt
            grpc_run "$f" "$CNN_GRPC" cnn "$CNN_BATCH,3,224,224" "$TMP/cnn.raw" "$CNN_CONNS" "$DURATION"
            R_CNN_GRPC="${R_CNN_GRPC:+$R_CNN_GRPC }$(awk -v r="$(grpc_field "$f" rps)" -v b="$CNN_BATCH" 'BEGIN { printf "%.1f", r * b }')"
            R_CNN_GRPC_P99="${R_CNN_GRPC_P99:+$R_CNN_GRPC_P99 }$(grpc_field "$f" p99_ms)"
            R_CNN_GRPC_RATIO="${R_CNN_GRPC_RATIO:+$R_CNN_GRPC_RATIO }$(div "${R_CNN_GRPC##* }" "${R_ORT##* }")"
            echo "bench: cnn_grpc: run $i/$REPEAT: $(grpc_field "$f" rps) req/s (batch $CNN_BATCH), p99 $(grpc_field "$f" p99_ms) ms"
        fi
    done
    if want cnn; then
        # Health on the same server while the CNN keeps its loops' neighbours busy.
        for i in $(seq "$REPEAT"); do
            f=$OUT/cnn-health.run$i.wrk.txt
            env MG_BENCH_CHECK=0 wrk -t"$THREADS" -c"$CNN_CONNS" -d"${DURATION}s" --latency \
                -s "$ROOT/bench/cnn_binary.lua" "$CNN_URL" >"$OUT/cnn-health-load.run$i.wrk.txt" 2>&1 &
            load=$!
            sleep 0.5
            wrk_part health "$f" "$((DURATION > 2 ? DURATION - 1 : 1))" 0
            wait "$load" || die "cnn: the load beside the health requests failed"
            R_HEALTH_P99="${R_HEALTH_P99:+$R_HEALTH_P99 }$(wrk_field "$f" p99_ms)"
            R_HEALTH_CNN="${R_HEALTH_CNN:+$R_HEALTH_CNN }$(awk -v r="$(wrk_field "$OUT/cnn-health-load.run$i.wrk.txt" rps)" -v b="$CNN_BATCH" 'BEGIN { printf "%.1f", r * b }')"
            echo "bench: health+cnn: run $i/$REPEAT: health p99 $(wrk_field "$f" p99_ms) ms, cnn $(wrk_field "$OUT/cnn-health-load.run$i.wrk.txt" rps) req/s"
        done
    fi
    stop_servers
fi

# 3b. System shared memory against the binary extension on the CNN, and the region soak ---------
if want shm; then
    echo "bench: shm: the CNN, $CNN_CONNS clients, binary vs shared memory alternated $REPEAT times; $SHM_CYCLES register/infer/unregister cycles"
    R_SHM=$("$PY" bench/shm.py --modelgate "$MODELGATE" --repo "$CNN_REPO" --secs "$DURATION" \
        --clients "$CNN_CONNS" --rounds "$REPEAT" --cycles "$SHM_CYCLES" --daemon-threads "$THREADS" | tail -n 1) ||
        die "shm: failed: $R_SHM"
    echo "bench: shm: $R_SHM"
fi

# 4. Drain: SIGTERM while wrk drives 64 connections of a slow model ------------------------------
if want drain; then
    rm -f "$OUT"/drain.*
    "$PY" scripts/gen_slow_model.py "$TMP/slow-repo" --layers 16 >"$OUT/drain.gen.txt" ||
        die "scripts/gen_slow_model.py failed"
    "$PY" -c 'import json; print(json.dumps({"inputs": [{"name": "input", "shape": [1, 16],
        "datatype": "FP32", "data": list(range(16))}]}))' >"$TMP/slow.json"
    start_modelgate drain "$TMP/slow-repo"
    drain_pid=${SERVER_PIDS[-1]}
    f=$OUT/drain.wrk.txt
    echo "bench: drain: wrk -t$THREADS -c64 -d8s on /v2/models/slow/infer, SIGTERM after 3 s"
    wrk -t"$THREADS" -c64 -d8s --timeout 30s --latency -s "$ROOT/bench/digits.lua" "$MG_URL" -- "$TMP/slow.json" \
        /v2/models/slow/infer >"$f" 2>&1 &
    drain_wrk=$!
    sleep 3
    t0=$(date +%s.%N)
    kill -TERM "$drain_pid"
    code=0
    wait "$drain_pid" || code=$?
    t1=$(date +%s.%N)
    SERVER_PIDS=()
    wait "$drain_wrk" || die "drain: wrk failed: $(tail -n 5 "$f")"
    read -r connect readerr writeerr timeouterr < <(awk '/Socket errors:/ { gsub(/,/, ""); print $4, $6, $8, $10 }' "$f")
    answered=$(awk '/requests in/ { print $1 }' "$f")
    non2xx=$(wrk_field "$f" non2xx)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    lost=$((${readerr:-0} + ${timeouterr:-0} + non2xx))
    v=$(verdict "$code == 0 && $lost == 0")
    R_DRAIN="SIGTERM under wrk -c64 on the slow model ($(cut -d: -f2- "$OUT/drain.gen.txt" | sed 's/^ *//')): exit $code after $secs s;"
    R_DRAIN+=" $answered answered, lost $lost (read errors ${readerr:-0}, timeouts ${timeouterr:-0}, non-2xx $non2xx),"
    R_DRAIN+=" refused reconnects $((${connect:-0} + ${writeerr:-0})) (target: exit 0, 0 lost) $v"
    echo "bench: drain: $R_DRAIN"
fi

# 5. Fleet: three instances and etcd --------------------------------------------------------------
if want fleet; then
    command -v etcd >/dev/null || die "etcd not found (run: make setup)"
    run_child "$OUT/fleet.txt" "$PY" bench/fleet_bench.py "$BUILD" "$FLEET_CHANGES" ||
        { tail -n 30 "$OUT/fleet.txt" >&2; die "fleet: bench/fleet_bench.py failed"; }
    grep '^fleet: change\|^fleet: [0-9]' "$OUT/fleet.txt" | sed 's/^/bench: /'
    R_FLEET=$(grep '^fleet: changes=' "$OUT/fleet.txt" | tail -n 1)
fi

# 6. Overload: shedding on a slow model (its own daemon) ---------------------------------------------
if want overload; then
    "$PY" bench/overload.py --bin "$BUILD/modelgate" --seconds "$DURATION" | tee "$OUT/overload.txt" ||
        die "overload benchmark failed"
fi

# 7. Summary ----------------------------------------------------------------------------------------
{
    summary
    if want overload && [ -f "$OUT/overload.txt" ]; then
        sed -n 's/^  \(accepted\|refused 503\|memory\|floor\) *: /overload \1: /p' "$OUT/overload.txt"
    fi
    # only this run's: bench/out keeps the files of earlier runs
    if want micro && [ -f "$OUT/route_bench.txt" ]; then
        grep -E '^ *(rules|1|1000|18000) +\|' "$OUT/route_bench.txt" | sed 's/^/route table  : /'
    fi
} | tee "$OUT/summary.txt"
{ summary; echo; } >>"$OUT/history.txt"
if [ "$STRICT" = 1 ] && grep -q ' MISS$' "$OUT/summary.txt"; then
    echo "bench: a target was missed (BENCH_STRICT=1)" >&2
    exit 1
fi
