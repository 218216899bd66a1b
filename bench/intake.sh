#!/bin/bash
# intake: messages/s Postfix takes in with mxlane-milter capturing every one, against the same
# Postfix alone putting every one on hold (both write each message durably), fed by smtp-source.
# The two alternate (swapping places every other round) for MXLANE_BENCH_ROUNDS rounds and
# the median of the rounds' ratios is the figure: on a shared machine one pair of runs can be
# off by a factor of two either way.
# Each round also runs the same Postfix with bench/milter_floor, a filter that only receives
# each message and discards it, twice: on libmilter (what libmilter's protocol alone costs
# Postfix here) and on mxlane's own milter engine (milter_floor_own, the same filter: what the
# protocol costs on the engine mxlane-milter runs on). The second floor against the capture
# is mxlane's own cost. A third floor run, the durable floor (milter_floor_own -s FILE), also
# flushes each message to a file before it answers: what the promise "answered only when on
# disk" costs by itself, so that capture over the durable floor is what mxlane's store adds to
# that. Each round also prints the CPU time each filter used per message: the
# same cost in a unit the neighbours of a shared machine hardly move; and the CPU time the
# whole machine used per message in each run (every process: Postfix, the filter, the kernel's
# threads), whose ratio held/captured is the rate ratio this CPU-bound bench would show
# without neighbours, and "capture over the floor" mxlane's own cost as a share of holding.
#
#   MXLANE_BENCH_MESSAGES=5000 MXLANE_BENCH_RECIPIENTS=10 MXLANE_BENCH_SESSIONS=10 \
#   MXLANE_BENCH_ROUNDS=3 bash bench/intake.sh
# Everything (Postfix's queue, mxlane's store) lives under TMPDIR: give it a file system like
# the mail server's (bench/README.md, "the machine's file system").
# MXLANE_BENCH_PERF=DIR also records the milter's CPU with `perf record -g` in each round
# (DIR/milter-ROUND.data; `perf report -i` it): where the capture's microseconds go; and the
# whole machine in each run (DIR/all-{hold,milter,floor,floor_own}-ROUND.data; `perf report
# --sort comm -i` it): which process, Postfix's or the filter's, spends the time a filter
# adds. MXLANE_BENCH_PERF_ALL_ONLY=1 leaves out the first (its call graphs slow the milter).
# MXLANE_BENCH_MILTER_B=PATH runs a second mxlane-milter build (main before a change, say) in
# every round too, on a store of its own: two builds compared in the same rounds.
. "$(dirname "$0")/../tests/fixtures/lib.sh"
fx_init bench_intake
fx_need smtp-source
[ -x "$FX_MILTER" ] && [ -x "$FX_CTL" ] || fx_fatal "mxlane-milter or mxlanectl not built"
FLOOR=$MXLANE_BUILDDIR/bench/milter_floor
FLOOR_OWN=$MXLANE_BUILDDIR/bench/milter_floor_own
for f in "$FLOOR" "$FLOOR_OWN"; do
    [ -x "$f" ] || fx_fatal "$f not built (make -C bench milter_floor milter_floor_own)"
done

N=${MXLANE_BENCH_MESSAGES:-5000}
R=${MXLANE_BENCH_RECIPIENTS:-10}
S=${MXLANE_BENCH_SESSIONS:-10}
SIZE=${MXLANE_BENCH_SIZE:-2000}
ROUNDS=${MXLANE_BENCH_ROUNDS:-3}
SENDER=bulk@bench.test

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# busy_ticks: the CPU time every process of this machine has used so far (user, nice,
# system, irq, softirq from /proc/stat), in clock ticks; not idle, I/O wait nor steal.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }

# run_source LABEL: smtp-source into Postfix; sets MS to the elapsed milliseconds and
# HOST_CPU to the CPU time all processes used meanwhile, in microseconds per message:
# what the run cost the machine (Postfix, the filter, smtp-source), whoever else takes
# its CPUs away (the time other guests take is steal, not counted).
run_source() {
    local t0 c0
    t0=$(now_ms)
    c0=$(busy_ticks)
    smtp-source -c -s "$S" -m "$N" -r "$R" -l "$SIZE" -f "$SENDER" -t rcpt@dest.test \
        "127.0.0.1:$FX_PF_PORT" > "$FX/source.$1" 2>&1 || fx_fatal "smtp-source failed: $(tail -n 2 "$FX/source.$1")"
    MS=$(($(now_ms) - t0))
    HOST_CPU=$(awk -v d="$(($(busy_ticks) - c0))" -v hz="$(getconf CLK_TCK)" -v n="$N" \
        'BEGIN { printf "%.0f", d * 1000000 / hz / n }')
}

rate() { awk -v n="$N" -v ms="$1" 'BEGIN { printf "%.0f", n * 1000 / ms }'; }

# cpu_per_message PID: the CPU time (user + system) the filter has used, in microseconds per
# message. Unlike the rates, it hardly moves when other guests take this machine's CPUs away.
cpu_per_message() {
    awk -v hz="$(getconf CLK_TCK)" -v n="$N" '{ printf "%.0f", ($14 + $15) * 1000000 / hz / n }' "/proc/$1/stat"
}

# Mail that were not held or discarded would go to a port where nobody listens.
FX_POSTFIX_RELAYHOST="[127.0.0.1]:$FX_DEAD_PORT"

# Postfix's cleanup takes one in_flow_delay token per message and gives it back for mail
# put on hold, but not for mail a milter discards; only qmgr refills the bucket, from
# incoming mail it never sees here. With the default (1s), once the first ~100 tokens
# (default_process_limit) are spent, cleanup sleeps up to a second before taking each
# message, and the milter run measured that asymmetry (20 msg/s) instead of the capture.
# A host where mxlane discards the bulk mail it takes over should set in_flow_delay = 0;
# both runs here do.
NO_FLOW_DELAY="in_flow_delay = 0"

fx_write_conf "$FX/mxlane.conf" "bulk_senders = $SENDER"
MILTER_B=${MXLANE_BENCH_MILTER_B:-}
if [ -n "$MILTER_B" ]; then
    [ -x "$MILTER_B" ] || fx_fatal "MXLANE_BENCH_MILTER_B: $MILTER_B is not a program"
    fx_write_conf "$FX/b.conf" "bulk_senders = $SENDER" "queue_directory=$FX/b/queue" \
        "milter_socket=unix:$FX/b/milter.sock" "log_file=$FX/b/mxlane.log"
fi

# captured CONF: the recipients in the store so far (the messages, one sender and one
# Subject:, join one job: job_idle_close).
captured() {
    "$FX_CTL" -c "$1" jobs --json | "$FX_PYTHON" -c '
import json, sys
print(sum(j["counts"]["queued"] for j in json.load(sys.stdin)))'
}

echo "intake: $N messages x $R recipients, $SIZE bytes, $S smtp-source sessions, $(nproc) cores, $ROUNDS rounds"
# through_postfix LABEL [MAIN.CF LINES...]: a fresh Postfix (FX_POSTFIX_MILTER as set) takes the
# N messages; sets MS (elapsed ms), HELD (hold queue) and LEFT (every queue) as it was at the end.
through_postfix() {
    local label=$1
    shift
    fx_postfix_start "$@" "$NO_FLOW_DELAY"
    local all_pid=
    if [ -n "${MXLANE_BENCH_PERF:-}" ]; then
        mkdir -p "$MXLANE_BENCH_PERF"
        perf record -q -a -o "$MXLANE_BENCH_PERF/all-$label-$round.data" >/dev/null 2>&1 &
        all_pid=$!
        fx_register_pid "$all_pid"
    fi
    run_source "$label"
    [ -z "$all_pid" ] || { kill -INT "$all_pid"; wait "$all_pid" 2>/dev/null; }
    HELD=$(fx_postfix_hold_count)
    LEFT=$(fx_postfix_queue_count)
    fx_postfix_stop
    rm -rf "$FX/pf"
}

# through_floor PROGRAM LABEL [ARGS...]: through_postfix with PROGRAM (given ARGS too) as the
# filter (it discards every message).
through_floor() {
    local sock=$FX/$2.$round.sock pid
    ( umask 0111; exec "$1" -p "unix:$sock" "${@:3}" ) > "$FX/$2.out" 2>&1 &
    pid=$!
    fx_register_pid "$pid"
    fx_wait_for test -S "$sock" || fx_fatal "$1 did not create $sock: $(tail -n 3 "$FX/$2.out")"
    FX_POSTFIX_MILTER=unix:$sock
    through_postfix "$2"
    CPU=$(cpu_per_message "$pid")
    fx_stop_pid "$pid"
    fx_check_eq "round $round: nothing left in Postfix with $2" 0 "$LEFT" >/dev/null ||
        fx_fatal "$LEFT messages left in Postfix with $2"
}

# through_milter PROGRAM CONF LABEL: through_postfix with that mxlane-milter build capturing
# every message into CONF's store; sets MS and CPU (the milter's, per message).
through_milter() {
    local FX_MILTER=$1
    fx_milter_start "$2"
    FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
    local perf_pid=
    if [ -n "${MXLANE_BENCH_PERF:-}" ] && [ -z "${MXLANE_BENCH_PERF_ALL_ONLY:-}" ]; then
        mkdir -p "$MXLANE_BENCH_PERF"
        perf record -q -g -p "$FX_MILTER_PID" -o "$MXLANE_BENCH_PERF/$3-$round.data" >/dev/null 2>&1 &
        perf_pid=$!
        fx_register_pid "$perf_pid"
    fi
    through_postfix "$3"
    local ms=$MS host_cpu=$HOST_CPU
    [ -z "$perf_pid" ] || { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null; }
    CPU=$(cpu_per_message "$FX_MILTER_PID")
    fx_stop_pid "$FX_MILTER_PID"
    local got
    got=$(captured "$2")
    fx_check_eq "round $round: $3 captured every message" "$((round * N * R))" "$got" >/dev/null ||
        fx_fatal "$3's store holds $got recipients after round $round, not $((round * N * R))"
    fx_check_eq "round $round: nothing left in Postfix with $3" 0 "$LEFT" >/dev/null ||
        fx_fatal "$LEFT messages left in Postfix with $3"
    MS=$ms HOST_CPU=$host_cpu
}

ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

ratios=() holds=() milters=() floors=() floor_ratios=() own_floors=() own_floor_ratios=()
cpus_milter=() cpus_floor=() cpus_floor_own=() ratios_b=() cpus_milter_b=() host_ratios=() host_extra=() host_ratios_b=()
durable_floors=() durable_floor_ratios=() cpus_floor_durable=() host_durable_extra=() host_over_durable=()
# run_hold, run_capture, run_capture_b: one run each (Postfix alone holding; Postfix with
# mxlane-milter capturing; the same with MXLANE_BENCH_MILTER_B), keeping its figures.
run_hold() {
    FX_POSTFIX_MILTER=
    through_postfix hold "smtpd_end_of_data_restrictions = check_client_access static:HOLD"
    ms_hold=$MS
    host_hold=$HOST_CPU
    fx_check_eq "round $round: Postfix alone held every message" "$N" "$HELD" >/dev/null ||
        fx_fatal "Postfix held $HELD of $N messages"
}
run_capture() {
    through_milter "$FX_MILTER" "$FX/mxlane.conf" milter
    ms_milter=$MS
    cpu_milter=$CPU
    host_milter=$HOST_CPU
}
run_capture_b() {
    [ -n "$MILTER_B" ] || return 0
    through_milter "$MILTER_B" "$FX/b.conf" milter_b
    ms_milter_b=$MS
    cpu_milter_b=$CPU
    host_milter_b=$HOST_CPU
}

for ((round = 1; round <= ROUNDS; round++)); do
    # Postfix alone and the capture swap places every other round: a run pays for what the
    # run before it left behind (on ext4 without a journal, every inode freed in the last
    # half minute is checked again when cleanup creates a queue file), so no side always
    # comes second.
    if ((round % 2)); then
        run_hold
        run_capture
        run_capture_b
    else
        run_capture_b
        run_capture
        run_hold
    fi

    # ---- the same Postfix with each floor filter discarding every message
    through_floor "$FLOOR" floor
    ms_floor=$MS
    cpu_floor=$CPU
    through_floor "$FLOOR_OWN" floor_own
    ms_floor_own=$MS
    cpu_floor_own=$CPU
    host_floor_own=$HOST_CPU
    # ---- and the durable floor: the same, but each message flushed to a file before the answer
    through_floor "$FLOOR_OWN" floor_durable -s "$FX/floor_durable.spool"
    ms_floor_durable=$MS
    cpu_floor_durable=$CPU
    host_floor_durable=$HOST_CPU
    rm -f "$FX/floor_durable.spool"

    holds+=("$(rate "$ms_hold")")
    milters+=("$(rate "$ms_milter")")
    floors+=("$(rate "$ms_floor")")
    ratios+=("$(ratio_of "$ms_hold" "$ms_milter")")
    floor_ratios+=("$(ratio_of "$ms_hold" "$ms_floor")")
    own_floors+=("$(rate "$ms_floor_own")")
    own_floor_ratios+=("$(ratio_of "$ms_hold" "$ms_floor_own")")
    durable_floors+=("$(rate "$ms_floor_durable")")
    durable_floor_ratios+=("$(ratio_of "$ms_hold" "$ms_floor_durable")")
    cpus_floor_durable+=("$cpu_floor_durable")
    cpus_milter+=("$cpu_milter") cpus_floor+=("$cpu_floor") cpus_floor_own+=("$cpu_floor_own")
    # The machine's CPU per message held, over that per message captured: the rate ratio a
    # machine whose CPUs are the bound would show (this bench's is); and what capture costs
    # over the floor filter on the engine, as a share of holding.
    host_ratios+=("$(ratio_of "$host_hold" "$host_milter")")
    host_extra+=("$(awk -v m="$host_milter" -v f="$host_floor_own" -v h="$host_hold" 'BEGIN { printf "%.0f", (m - f) * 100 / h }')")
    host_durable_extra+=("$(awk -v d="$host_floor_durable" -v f="$host_floor_own" -v h="$host_hold" 'BEGIN { printf "%.0f", (d - f) * 100 / h }')")
    host_over_durable+=("$(awk -v m="$host_milter" -v d="$host_floor_durable" -v h="$host_hold" 'BEGIN { printf "%.0f", (m - d) * 100 / h }')")
    if [ -n "$MILTER_B" ]; then
        ratios_b+=("$(ratio_of "$ms_hold" "$ms_milter_b")") cpus_milter_b+=("$cpu_milter_b")
        host_ratios_b+=("$(ratio_of "$host_hold" "$host_milter_b")")
    fi
    printf '  round %d: held %6s msg/s (%d ms), captured %6s msg/s (%d ms), ratio %s; floor %6s msg/s, ratio %s; own-engine floor %6s msg/s, ratio %s\n' \
        "$round" "${holds[-1]}" "$ms_hold" "${milters[-1]}" "$ms_milter" "${ratios[-1]}" "${floors[-1]}" "${floor_ratios[-1]}" \
        "${own_floors[-1]}" "${own_floor_ratios[-1]}"
    printf '           durable floor %6s msg/s, ratio %s\n' "${durable_floors[-1]}" "${durable_floor_ratios[-1]}"
    printf '           the filter'"'"'s CPU per message: mxlane-milter %s us, libmilter floor %s us, own-engine floor %s us, durable floor %s us\n' \
        "$cpu_milter" "$cpu_floor" "$cpu_floor_own" "$cpu_floor_durable"
    printf '           the machine'"'"'s CPU per message: held %s us, captured %s us, own-engine floor %s us, durable floor %s us; held/captured %s, capture over the floor %s%% of holding\n' \
        "$host_hold" "$host_milter" "$host_floor_own" "$host_floor_durable" "${host_ratios[-1]}" "${host_extra[-1]}"
    printf '           of that, the durable floor over the floor %s%%, capture over the durable floor %s%%\n' \
        "${host_durable_extra[-1]}" "${host_over_durable[-1]}"
    [ -z "$MILTER_B" ] || printf '           MXLANE_BENCH_MILTER_B: captured %6s msg/s, ratio %s, %s us CPU per message; the machine'"'"'s %s us, held/captured %s\n' \
        "$(rate "$ms_milter_b")" "${ratios_b[-1]}" "$cpu_milter_b" "$host_milter_b" "${host_ratios_b[-1]}"
done

# median: the middle value of its arguments (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio=$(median "${ratios[@]}")
printf '  Postfix alone, every message held:      %6s msg/s  (median of %d rounds)\n' "$(median "${holds[@]}")" "$ROUNDS"
printf '  Postfix + mxlane-milter, all captured:  %6s msg/s  (median of %d rounds)\n' "$(median "${milters[@]}")" "$ROUNDS"
printf '  Postfix + libmilter floor, discarded:   %6s msg/s  (median of %d rounds; ratio %s)\n' \
    "$(median "${floors[@]}")" "$ROUNDS" "$(median "${floor_ratios[@]}")"
printf '  Postfix + floor on mxlane'"'"'s engine:  %6s msg/s  (median of %d rounds; ratio %s)\n' \
    "$(median "${own_floors[@]}")" "$ROUNDS" "$(median "${own_floor_ratios[@]}")"
printf '  Postfix + the durable floor:            %6s msg/s  (median of %d rounds; ratio %s)\n' \
    "$(median "${durable_floors[@]}")" "$ROUNDS" "$(median "${durable_floor_ratios[@]}")"
printf '  the filter'"'"'s CPU per message:          mxlane-milter %s us, libmilter floor %s us, own-engine floor %s us, durable floor %s us (medians)\n' \
    "$(median "${cpus_milter[@]}")" "$(median "${cpus_floor[@]}")" "$(median "${cpus_floor_own[@]}")" "$(median "${cpus_floor_durable[@]}")"
[ -z "$MILTER_B" ] || printf '  MXLANE_BENCH_MILTER_B (%s):  ratio %s, %s us CPU per message, the machine'"'"'s held/captured %s (medians)\n' \
    "$MILTER_B" "$(median "${ratios_b[@]}")" "$(median "${cpus_milter_b[@]}")" "$(median "${host_ratios_b[@]}")"
printf '  the machine'"'"'s CPU, held / captured:   %s  (median of the rounds; capture over the floor filter: %s%% of holding)\n' \
    "$(median "${host_ratios[@]}")" "$(median "${host_extra[@]}")"
printf '  of that, the flush before the answer:   %s%% (the durable floor over the floor); capture over the durable floor: %s%%\n' \
    "$(median "${host_durable_extra[@]}")" "$(median "${host_over_durable[@]}")"
awk -v r="$ratio" 'BEGIN {
    printf "  ratio (milter rate / Postfix rate):     %.2f  (median of the rounds; capture costs %.0f%% of Postfix intake)\n", r, (1 - r) * 100 }'
fx_check "every round: Postfix held all, the milter captured all, nothing left" true
fx_done
