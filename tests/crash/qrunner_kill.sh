#!/bin/bash
# qrunner_kill: the qrunner is killed with SIGKILL at random moments of a run and restarted; in the
# end every recipient is delivered, only recipients in flight at a kill arrive twice, nothing is
# left in flight, the per-state counts match the recipients, and db_verify passes. Two cases:
#
# bulk: 600 messages x 100 recipients (4 domains, so 25 per transaction), one job, five kills.
#   That is the shape of bulk mail (one text, many recipients), it loads in a second with mkjob,
#   and it puts the most recipients at stake per kill: each transaction carries many.
# single: 20,000 one-recipient messages to one domain at the default 20 connections, three kills,
#   at most 300 duplicates in all: each result is in the store's log within milliseconds of its
#   250 (write_nosync commits, on the result writer's own thread), so a kill can undo little.
#
#   CRASH_CASES="bulk single" (default both)   CRASH_KILLS=N (every case's kills)
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_kill
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need /usr/bin/db5.3_verify
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
[ -x "$MKJOB" ] || fx_fatal "$MKJOB not built (make check builds it)"
P=$(fx_port 5)

# bulk: d1..d4.test on 127.0.0.71-74; single: one.test on 127.0.0.75.
records=()
for d in 1 2 3 4; do
    records+=("mx-host=d$d.test,mx.d$d.test,10" "host-record=mx.d$d.test,127.0.0.$((70 + d))")
done
records+=("mx-host=one.test,mx.one.test,10" "host-record=mx.one.test,127.0.0.75")
fx_dns_start "${records[@]}"

# crash_case NAME MESSAGES PER_MESSAGE DOMAINS KILLS MAX_CONN DEST_CONCURRENCY MAX_DUPLICATES
# (DOMAINS 0: one.test; MAX_DUPLICATES empty: bounded only by what was in flight at the kills)
crash_case() {
local name=$1 MESSAGES=$2 PER_MESSAGE=$3 DOMAINS=$4 KILLS=$5 MAX_CONN=$6 DEST_CONC=$7 MAX_DUPS=$8
local TOTAL=$((MESSAGES * PER_MESSAGE)) start=$SECONDS D=$FX/$name
local PER_TXN=$((PER_MESSAGE / (DOMAINS > 0 ? DOMAINS : 1)))
mkdir -p "$D/queue"
fx_log "---- case $name: $MESSAGES messages x $PER_MESSAGE recipients, $KILLS kills"
local sinks=()
if [ "$DOMAINS" -gt 0 ]; then
    for d in $(seq 1 "$DOMAINS"); do fx_smtp_sink "$name-d$d" "127.0.0.$((70 + d))" "$P"; sinks+=("$FX/sinks/$name-d$d/dump"); done
else
    fx_smtp_sink "$name-one" 127.0.0.75 "$P"
    sinks+=("$FX/sinks/$name-one/dump")
fi

fx_write_conf "$D/mxlane.conf" "queue_directory = $D/queue" "log_file = $D/mxlane.log" \
    "smtp_port = $P" "dns_timeout = 2s" "retry_schedule = 1s" \
    "max_connections = $MAX_CONN" "destination_concurrency = $DEST_CONC" \
    "max_recipients_per_transaction = $PER_MESSAGE" "smtp_tls_security_level = none" \
    "queue_run_delay = 1s" "notify_sender = none" "mail_owner = nobody"
printf 'From: news@sender.test\nSubject: crash test\n\nHello, this is the crash test.\n' > "$D/msg.txt"
if [ "$DOMAINS" -gt 0 ]; then
    for m in $(seq 1 "$MESSAGES"); do
        for r in $(seq 1 "$PER_MESSAGE"); do echo "m${m}r${r}@d$(( (r - 1) % DOMAINS + 1 )).test"; done
    done
else
    seq 1 "$MESSAGES" | sed 's/.*/m&@one.test/'
fi > "$D/rcpts"
job=$("$MKJOB" "$D/queue" "$D/msg.txt" --name crash --from news@sender.test \
      --per-message "$PER_MESSAGE" < "$D/rcpts" | tail -n 1)
fx_check "$name: job of $TOTAL recipients created" test -n "$job"
# Recipients the sinks have seen so far (duplicates included).
ctl() { "$FX_CTL" -c "$D/mxlane.conf" "$@"; }
count() {  # count STATE: recipients of the job in STATE by the job's counters
    ctl job "$job" --json | "$FX_PYTHON" -c "import json,sys; print(json.load(sys.stdin)['counts']['$1'])"
}

run_qrunner() {
    "$FX_QRUNNER" -c "$D/mxlane.conf" -f >> "$D/qrunner.out" 2>&1 &
    QPID=$!
    fx_register_pid "$QPID"
}
# Results the qrunner has logged so far, over all its runs (it logs each one as it arrives,
# before the commit; the store's counters wait behind its transactions, and smtp-sink
# writes its dump in bursts, so neither can time a kill).
logged() { local n; n=$(grep -c 'status=sent' "$D/qrunner.out" 2>/dev/null); echo "${n:-0}"; }
wait_logged() {
    local deadline=$((SECONDS + 60))
    while [ "$(logged)" -lt "$1" ]; do
        fx__alive "$QPID" || fx_fatal "qrunner exited by itself: $(tail -n 2 "$D/qrunner.out")"
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.02
    done
}

# Kill points: after a random 500-3,000 more results than the last kill (so every kill lands
# mid-delivery whatever the machine's speed, and 4 of them end before 12,000), and one at a
# random instant 0.1-0.6 s after a start (recovery and the first claims).
local early=$((RANDOM % KILLS + 1))
local kills=0 killed_at=() k
for k in $(seq 1 "$KILLS"); do
    run_qrunner
    if [ "$k" -eq "$early" ]; then
        sleep "0.$((RANDOM % 6 + 1))"
    else
        wait_logged $(( $(logged) + 500 + RANDOM % 2500 )) || fx_log "kill $k: no progress in 60 s"
    fi
    if fx__alive "$QPID"; then
        kill -KILL "$QPID"
        wait "$QPID" 2>/dev/null
        kills=$((kills + 1))
        killed_at+=("$(logged)")
    else
        fx_log "kill $k: qrunner had already exited"
    fi
done
fx_log "killed $kills times, after ${killed_at[*]} results logged"
fx_check_eq "$name: qrunner killed $KILLS times mid-run" "$KILLS" "$kills"
fx_check "$name: some recipients were still waiting after the last kill" test "$(count delivered)" -lt "$TOTAL"

# The last start runs to the end: recovery, then everything due.
run_qrunner
fx_check "$name: every recipient delivered after the last restart" fx_wait_eq -t 90 "$TOTAL" count delivered
fx_stop_pid "$QPID"
fx_check "$name: qrunner stopped cleanly at the end" grep -q 'qrunner.*: stopped' "$D/qrunner.out" "$D/mxlane.log"
fx_check "$name: recoveries logged" grep -q 'took back .* recipients left in flight' "$D/qrunner.out" "$D/mxlane.log"

# ---- the store
fx_check_eq "$name: nothing left in flight" 0 "$(ctl job "$job" --json | "$FX_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["inflight"])')"
fx_check "$name: counters agree with the recipients (all $TOTAL delivered, nothing else)" bash -c "
  '$FX_CTL' -c '$D/mxlane.conf' recipients '$job' --json | '$FX_PYTHON' -c '
import json,sys,collections
rs=json.load(sys.stdin)
states=collections.Counter(r[\"state\"] for r in rs)
assert len(rs)==$TOTAL and states==collections.Counter(delivered=$TOTAL), (len(rs),states)
assert len({r[\"address\"] for r in rs})==$TOTAL'
  '$FX_CTL' -c '$D/mxlane.conf' job '$job' --json | '$FX_PYTHON' -c '
import json,sys
j=json.load(sys.stdin); c=j[\"counts\"]
assert c[\"delivered\"]==$TOTAL and sum(c.values())==$TOTAL, c
assert j[\"state\"]==\"done\", j[\"state\"]'"
verify_all() {
    local f rc=0 D=$D
    for f in "$D"/queue/*.db; do
        (cd "$D/queue" && db5.3_verify -h "$D/queue" "$(basename "$f")") || { echo "db_verify: $f"; rc=1; }
    done
    return $rc
}
fx_check "$name: db_verify passes on every .db file" verify_all

# ---- what the sinks received
"$FX_PYTHON" - "$D/rcpts" "${sinks[@]}" > "$D/dups" <<'PY'
import collections, sys
want = set(open(sys.argv[1]).read().split())
seen = collections.Counter()
for dump in sys.argv[2:]:
    for line in open(dump, errors="replace"):
        if line.startswith("X-Rcpt-Args: "):
            seen[line.split()[1].strip("<>")] += 1
missing = want - set(seen)
extra = set(seen) - want
dups = sum(n - 1 for n in seen.values() if n > 1)
print(len(missing), len(extra), dups, max(seen.values()) if seen else 0)
PY
local missing extra dups most taken wire
read -r missing extra dups most < "$D/dups"
# In flight at each kill: what the next start took back (claimed, result not yet committed).
# Only those may arrive twice: the transactions on the wire (kills x max_connections x
# recipients per transaction) and results not yet committed when the kill came.
taken=$(sed -n 's/.*took back \([0-9]*\) recipients left in flight.*/\1/p' "$D/qrunner.out" "$D/mxlane.log" 2>/dev/null |
        awk '{s += $1} END {print s + 0}')
wire=$((kills * MAX_CONN * PER_TXN))
fx_log "$name: sinks: $missing missing, $extra unknown, $dups duplicates (taken back after kills: $taken; on the wire at most: $wire), at most $most copies of one recipient; $((SECONDS - start)) s"
fx_check_eq "$name: every recipient arrived at its sink" 0 "$missing"
fx_check_eq "$name: nothing arrived that was not sent" 0 "$extra"
fx_check "$name: duplicates ($dups) no more than the recipients in flight at the kills ($taken)" test "$dups" -le "$taken"
fx_check "$name: no recipient arrived more than $((kills + 1)) times" test "$most" -le $((kills + 1))
if [ -n "$MAX_DUPS" ]; then
    fx_check "$name: at most $MAX_DUPS duplicates after $kills kills ($dups)" test "$dups" -le "$MAX_DUPS"
fi
echo "crash figures ($name): kills=$kills duplicates=$dups in_flight_at_kills=$taken wire_bound=$wire seconds=$((SECONDS - start))"
}

for c in ${CRASH_CASES:-bulk single}; do
    case $c in
        bulk) crash_case bulk 600 100 4 "${CRASH_KILLS:-5}" 4 1 "" ;;
        single) crash_case single 20000 1 0 "${CRASH_KILLS:-3}" 20 20 300 ;;
        *) fx_fatal "unknown case $c (bulk, single)" ;;
    esac
done
fx_done
