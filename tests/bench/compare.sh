#!/usr/bin/env bash
# Side-by-side benchmark of pookeeper and Apache ZooKeeper 3.8 (Debian
# package) on this machine's loopback; writes BENCHMARKS.md and
# docs/benchmarks.svg. See tests/bench/README.md.
#
#   tests/bench/compare.sh            # full run (well under 20 minutes)
#   tests/bench/compare.sh --quick    # a few minutes, 100k znodes
set -euo pipefail

usage() {
    cat <<'EOF'
usage: tests/bench/compare.sh [--quick] [options]
  --quick              smoke run: 1 round x 5 s, 100,000 znodes, create 150,000
  --rounds N           rounds per scenario and server (default 2; create: 1 run)
  --duration SECS      measured seconds per run (default 12; readers-writers:
                       per phase)
  --warmup SECS        unmeasured seconds before each run (default 3)
  --scenarios "A B"    default "get set mixed create-delete watch create
                       readers-writers"
  --sessions N         sessions (watch: watchers) (default 32)
  --depth N            outstanding requests per session (default 16)
  --keys N             znodes get/set spread over (default 10000)
  --znodes N           znodes loaded for memory and restart (default 1000000)
  --create-znodes N    create: znodes created into the tree (default 1000000)
  --readers N          readers-writers: reader sessions, 1 outstanding (default 16)
  --writers N          readers-writers: writer sessions, --depth outstanding
                       (default 16)
  --force-sync yes|no  forceSync for both servers (default yes)
  --heap SIZE          ZooKeeper's JVM -Xmx (default 4g)
  --out FILE           report (default BENCHMARKS.md)
  --svg FILE           chart (default docs/benchmarks.svg)
  --keep               keep the work directory (logs, data, results.jsonl)
EOF
}

ROUNDS=2 DURATION=12 WARMUP=3 PREWARM=5 ZNODES=1000000 FORCE_SYNC=yes HEAP=4g
SESSIONS=32 DEPTH=16 KEYS=10000 VALUE=100 WRITER_DEPTH=1 TICK=2000 SETTLE=3
LOAD_SESSIONS=8 LOAD_DEPTH=64 MODE=full KEEP=0
CREATE_ZNODES=1000000 CREATE_PARENTS=4 READERS=16 WRITERS=16
# snapCount for pookeeper's second create run: no snapshot during the run.
SNAP_INF=1000000000
SCENARIOS="get set mixed create-delete watch create readers-writers"
OUT=BENCHMARKS.md SVG=docs/benchmarks.svg
COMMAND="tests/bench/compare.sh$(printf ' %q' "$@")"
[ $# -gt 0 ] || COMMAND=tests/bench/compare.sh
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) MODE=quick ROUNDS=1 DURATION=5 WARMUP=1 PREWARM=3 ZNODES=100000 SETTLE=2 CREATE_ZNODES=150000 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --sessions) SESSIONS=$2; shift ;;
        --depth) DEPTH=$2; shift ;;
        --keys) KEYS=$2; shift ;;
        --znodes) ZNODES=$2; shift ;;
        --create-znodes) CREATE_ZNODES=$2; shift ;;
        --readers) READERS=$2; shift ;;
        --writers) WRITERS=$2; shift ;;
        --force-sync) FORCE_SYNC=$2; shift ;;
        --heap) HEAP=$2; shift ;;
        --out) OUT=$2; shift ;;
        --svg) SVG=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$FORCE_SYNC" in yes|no) ;; *) echo "--force-sync must be yes or no" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
ZK_HOME=/usr/share/zookeeper
[ -x "$ZK_HOME/bin/zkServer.sh" ] || { echo "Apache ZooKeeper is not installed (apt-get install zookeeper)" >&2; exit 1; }
command -v java >/dev/null || { echo "java is not installed" >&2; exit 1; }

log() { printf '%s compare: %s\n' "$(date +%T)" "$*" >&2; }

log "building (cargo build --release -p pookeeper-mio -p pookeeper-bench)"
cargo build --release -q -p pookeeper-mio -p pookeeper-bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PK_BIN=$TARGET/release/pookeeper
BENCH=$TARGET/release/pookeeper-bench

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pk-compare.XXXXXX")
RESULTS=$WORK/results.jsonl
META=$WORK/meta.tsv
: >"$RESULTS"
declare -A PID=()

# Stops one server: SIGCONT (it may be paused), SIGTERM, then SIGKILL
# after 20 s. Sets STOP_MS to how long it took to exit (a zombie counts as
# exited: it is reaped right after). Not to be run in a subshell: it must
# reap its own child.
stop_server() {
    local name=$1 pid=${PID[$1]:-} t0 i state
    STOP_MS=0
    [ -n "$pid" ] || return 0
    t0=$(date +%s%N)
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 2000; i++)); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || state=
        case "$state" in "" | Z | X) break ;; esac
        sleep 0.01
    done
    STOP_MS=$((($(date +%s%N) - t0) / 1000000))
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    for name in "${!PID[@]}"; do stop_server "$name"; done
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

free_port() {
    local p
    while :; do
        p=$("$BENCH" free-port)
        case " ${USED_PORTS:-} " in *" $p "*) ;; *) USED_PORTS="${USED_PORTS:-} $p"; echo "$p"; return ;; esac
    done
}

JVM_FLAGS="-Xmx$HEAP -Dzookeeper.forceSync=$FORCE_SYNC"

# launch NAME KIND DATADIR PORT [CFG_LINE]: starts a server in the
# background (no waiting); records its pid in PID[NAME]. For ZooKeeper the
# pid is the JVM (zkServer.sh start-foreground execs java). CFG_LINE, if
# given, is one more zoo.cfg line.
launch() {
    local name=$1 kind=$2 data=$3 port=$4 extra=${5:-} cfg=$WORK/$1.cfg
    mkdir -p "$data"
    {
        echo "tickTime=$TICK"
        echo "dataDir=$data"
        echo "clientPort=$port"
        echo "clientPortAddress=127.0.0.1"
        echo "maxClientCnxns=0"
        echo "4lw.commands.whitelist=*"
        echo "forceSync=$FORCE_SYNC"
        if [ "$kind" = zookeeper ]; then echo "admin.enableServer=false"; fi
        if [ -n "$extra" ]; then echo "$extra"; fi
    } >"$cfg"
    if [ "$kind" = zookeeper ]; then
        mkdir -p "$WORK/$name-logs"
        SERVER_JVMFLAGS="$JVM_FLAGS" ZOO_LOG_DIR="$WORK/$name-logs" \
            "$ZK_HOME/bin/zkServer.sh" start-foreground "$cfg" >>"$WORK/$name.out" 2>&1 &
    else
        POOKEEPER_LOG=info "$PK_BIN" "$cfg" >>"$WORK/$name.out" 2>&1 &
    fi
    PID[$name]=$!
}

# start NAME KIND DATADIR PORT: launch and wait until "/" is readable.
start() {
    launch "$@"
    if ! "$BENCH" wait-read --hosts "127.0.0.1:$4" --path / --timeout 90 >/dev/null; then
        log "$1 did not start; its output:"
        tail -20 "$WORK/$1.out" >&2
        exit 1
    fi
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/${PID[$1]}/status"; }
pause() { kill -STOP "${PID[$1]}"; }
resume() { kill -CONT "${PID[$1]}"; }

# jnum KEY JSON: the number field KEY of a JSON line.
jnum() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }

# bench_run SERVER PORT OP ROUND [ARGS...]: one benchmark run (ARGS go to
# pookeeper-bench after the common ones); appends its JSON line (or a
# failure line) to RESULTS.
bench_run() {
    local server=$1 port=$2 op=$3 round=$4 out rc=0 variant="" a
    shift 4
    for a in "$@"; do case "$a" in variant=*) variant=${a#variant=} ;; esac; done
    local budget=$((${DURATION%.*} + ${WARMUP%.*} + 120))
    case "$op" in
        readers-writers) budget=$((2 * (${DURATION%.*} + ${WARMUP%.*}) + 120)) ;;
        create) budget=1800 ;;
    esac
    out=$(timeout "$budget" "$BENCH" run --hosts "127.0.0.1:$port" --op "$op" \
        --sessions "$SESSIONS" --depth "$DEPTH" --duration "$DURATION" --warmup "$WARMUP" \
        --value-size "$VALUE" --keys "$KEYS" --writer-depth "$WRITER_DEPTH" --json --quiet \
        --label kind=run --label server="$server" --label round="$round" "$@" \
        2>"$WORK/bench.err") || rc=$?
    local what="$server${variant:+ ($variant)} $op round $round"
    if [ -n "$out" ] && [ $rc -le 1 ]; then
        echo "$out" >>"$RESULTS"
        if [ $rc -eq 1 ]; then
            log "  $what: ERROR REPLIES: $(sed -n 's/.*"error_detail":"\([^"]*\)".*/\1/p' <<<"$out")"
        fi
        case "$op" in
            readers-writers) log "  $what: $(jnum ops_per_sec "$out") reads/s beside writers" \
                "(alone $(jnum alone_ops_per_sec "$out")), $(jnum write_ops_per_sec "$out") writes/s" ;;
            create) log "  $what: $(jnum ops_per_sec "$out") creates/s in $(jnum elapsed_s "$out") s" ;;
            *) log "  $what: $(jnum ops_per_sec "$out") ops/s" ;;
        esac
    else
        local msg
        msg=$(tail -1 "$WORK/bench.err" | tr -d '"\\' | tr -c '[:print:]' ' ')
        log "  $what FAILED (exit $rc): $msg"
        printf '{"kind":"failure","server":"%s","variant":"%s","op":"%s","round":%d,"message":"%s"}\n' \
            "$server" "$variant" "$op" "$round" "exit $rc: $msg" >>"$RESULTS"
    fi
}

# prewarm NAME PORT: a few seconds of unrecorded mixed load (JIT warmup).
prewarm() {
    log "prewarm $1 (mixed, ${PREWARM} s, not recorded)"
    "$BENCH" run --hosts "127.0.0.1:$2" --op mixed --duration "$PREWARM" --warmup 0 \
        --sessions "$SESSIONS" --depth "$DEPTH" --keys "$KEYS" --quiet >/dev/null 2>&1 || true
}

# ---- machine facts -------------------------------------------------------
fact() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
: >"$META"
fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
fact mode "$MODE"
fact nproc "$(nproc)"
fact cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
fact memory "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
fact kernel "$(uname -sr)"
fact java "$(java -version 2>&1 | head -1)"
fact "ZooKeeper" "$(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo '?') (Debian package, zkServer.sh start-foreground with its defaults otherwise: local JMX on; no SLF4J binding on the classpath, so it logs nothing)"
fact jvm_flags "$JVM_FLAGS"
fact "JVM ergonomics" "$(java -Xmx"$HEAP" -XX:+PrintCommandLineFlags -version 2>&1 | head -1)"
fact pookeeper "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- core runtimes 2>/dev/null || echo ' + uncommitted changes in core/ or runtimes/')"
fact disk "$(df -PT "$WORK" | awk 'NR==2 {print $2 " on " $1}'), data directories in $(dirname "$WORK")"
fact forceSync "$FORCE_SYNC"
fact tickTime "$TICK"
fact sessions "$SESSIONS"
fact depth "$DEPTH"
fact keys "$KEYS"
fact value_size "$VALUE"
fact duration "$DURATION"
fact warmup "$WARMUP"
fact rounds "$ROUNDS"
fact writer_depth "$WRITER_DEPTH"
fact create_znodes "$CREATE_ZNODES"
fact create_parents "$CREATE_PARENTS"
fact "create, pookeeper's second run" "snapCount=$SNAP_INF"
fact readers "$READERS"
fact writers "$WRITERS"
fact value_size_load "$VALUE"
fact load_sessions "$LOAD_SESSIONS"
fact load_depth "$LOAD_DEPTH"
fact settle "$SETTLE"
fact "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- throughput and latency ---------------------------------------------
# Every scenario but create runs on one long-lived server each; create
# needs a fresh data directory per run (below).
MAIN_SCENARIOS=
CREATE=0
for op in $SCENARIOS; do
    if [ "$op" = create ]; then CREATE=1; else MAIN_SCENARIOS="$MAIN_SCENARIOS $op"; fi
done
extra_args() {
    case "$1" in readers-writers) echo "--readers $READERS --writers $WRITERS" ;; esac
}
if [ -n "$MAIN_SCENARIOS" ]; then
    ZK_PORT=$(free_port)
    PK_PORT=$(free_port)
    declare -A PORT=([zookeeper]=$ZK_PORT [pookeeper]=$PK_PORT)
    log "starting ZooKeeper (127.0.0.1:$ZK_PORT, $JVM_FLAGS) and pookeeper (127.0.0.1:$PK_PORT); work dir $WORK"
    start zookeeper zookeeper "$WORK/zk-data" "$ZK_PORT"
    start pookeeper pookeeper "$WORK/pk-data" "$PK_PORT"
    pause pookeeper
    pause zookeeper
    # The idle server is always SIGSTOPped, so it takes no CPU from the other.
    for s in zookeeper pookeeper; do
        resume "$s"
        prewarm "$s" "${PORT[$s]}"
        pause "$s"
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        n=0
        for op in $MAIN_SCENARIOS; do
            if (((round + n) % 2)); then order="zookeeper pookeeper"; else order="pookeeper zookeeper"; fi
            n=$((n + 1))
            for s in $order; do
                resume "$s"
                # shellcheck disable=SC2046 # the extra arguments are words
                bench_run "$s" "${PORT[$s]}" "$op" "$round" $(extra_args "$op")
                pause "$s"
            done
        done
    done
    stop_server zookeeper
    stop_server pookeeper
fi

# ---- create into a growing tree ------------------------------------------
# One run per server, each on a fresh data directory (created, prewarmed,
# measured, stopped, removed), plus pookeeper once more with snapCount so
# large that it takes no snapshot during the run.
if [ "$CREATE" = 1 ]; then
    for run in zookeeper pookeeper pookeeper-snapinf; do
        s=${run%-snapinf} cfg_line="" labels=()
        if [ "$run" != "$s" ]; then
            cfg_line="snapCount=$SNAP_INF"
            labels=(--label variant=snapcount-inf --label snap_count="$SNAP_INF")
        fi
        port=$(free_port)
        data=$WORK/$run-create
        log "$run: create $CREATE_ZNODES znodes on a fresh server (127.0.0.1:$port${cfg_line:+, $cfg_line})"
        start "$run-create" "$s" "$data" "$port" "$cfg_line"
        prewarm "$run-create" "$port"
        bench_run "$s" "$port" create 1 --count "$CREATE_ZNODES" --parents "$CREATE_PARENTS" \
            --no-teardown "${labels[@]}"
        stop_server "$run-create"
        [ "$KEEP" = 1 ] || rm -rf "$data"
    done
fi

# ---- memory and restart with ZNODES znodes --------------------------------
for s in zookeeper pookeeper; do
    port=$(free_port)
    data=$WORK/$s-load
    log "$s: loading $ZNODES znodes on 127.0.0.1:$port"
    start "$s-load" "$s" "$data" "$port"
    sleep "$SETTLE"
    idle=$(rss_kb "$s-load")
    out=$(timeout 900 "$BENCH" load --hosts "127.0.0.1:$port" --count "$ZNODES" --value-size "$VALUE" \
        --sessions "$LOAD_SESSIONS" --depth "$LOAD_DEPTH" --json --quiet \
        --label kind=load --label server="$s" 2>"$WORK/bench.err") || {
        log "$s: load failed: $(tail -1 "$WORK/bench.err")"
        [ -n "$out" ] || exit 1
    }
    echo "$out" >>"$RESULTS"
    last=$(sed -n 's/.*"last_path":"\([^"]*\)".*/\1/p' <<<"$out")
    log "$s: $(sed -n 's/.*"ops_per_sec":\([0-9.]*\).*/\1/p' <<<"$out") creates/s"
    sleep "$SETTLE"
    loaded=$(rss_kb "$s-load")
    heap=null
    if [ "$s" = zookeeper ] && command -v jcmd >/dev/null; then
        # Live heap after a full GC, for context (after the RSS reading).
        if jcmd "${PID[$s-load]}" GC.run >/dev/null 2>&1; then
            heap=$(jcmd "${PID[$s-load]}" GC.heap_info 2>/dev/null |
                sed -n 's/.*total [0-9]*K, used \([0-9]*\)K.*/\1/p' | head -1) || true
            [ -n "$heap" ] || heap=null
        fi
    fi
    stop_server "$s-load"
    stop_ms=$STOP_MS
    log "$s: restarting on the same data directory"
    t0=$(date +%s%N)
    launch "$s-load" "$s" "$data" "$port"
    if ! "$BENCH" wait-read --hosts "127.0.0.1:$port" --path "$last" --timeout 300 >/dev/null; then
        log "$s did not serve $last after restart"
        exit 1
    fi
    restart_ms=$((($(date +%s%N) - t0) / 1000000))
    sleep "$SETTLE"
    restarted=$(rss_kb "$s-load")
    stop_server "$s-load"
    log "$s: RSS ${idle} kB empty, ${loaded} kB loaded, ${restarted} kB after restart; restart ${restart_ms} ms"
    printf '{"kind":"memory","server":"%s","znodes":%d,"rss_idle_kb":%d,"rss_loaded_kb":%d,"heap_used_kb":%s,"stop_ms":%d,"restart_ms":%d,"rss_restarted_kb":%d}\n' \
        "$s" "$ZNODES" "$idle" "$loaded" "$heap" "$stop_ms" "$restart_ms" "$restarted" >>"$RESULTS"
done

fact "load average at end" "$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$SVG")"
SVG_LINK=$(realpath --relative-to="$(dirname "$(realpath -m "$OUT")")" "$(realpath -m "$SVG")")
"$BENCH" report --results "$RESULTS" --meta "$META" --out "$OUT" --svg "$SVG" \
    --svg-link "$SVG_LINK" --command "$COMMAND" \
    --subtitle "$MODE run, $(nproc) cores, forceSync=$FORCE_SYNC, $SESSIONS sessions x $DEPTH outstanding; best of $ROUNDS round(s)"
cat "$RESULTS"
log "wrote $OUT and $SVG"
