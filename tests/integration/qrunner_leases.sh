#!/bin/bash
# qrunner_leases: two qrunners on two queues share one Redis (shared_state): a destination allowed two
# connections (destination_concurrency) gets at most two at once from both together, through leases in
# Redis; Redis stopped: one each; a qrunner killed with -9 leaves leases that expire, and the other host
# then uses the whole limit.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_leases
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need redis-server redis-cli
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 1)
R=$(fx_port 2)

# The sink holds each connection open: a recipient slowN* waits N s for its RCPT reply.
fx_dns_start 'mx-host=conc.test,mx.conc.test,10' 'host-record=mx.conc.test,127.0.0.122'
fx_pysink_start "$FX/sink" "127.0.0.122:$P"
mkdir -p "$FX/redis"
redis_start() {
  fx_spawn "redis$1" redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --dir "$FX/redis"
  REDIS_PID=$FX_LAST_PID
  fx_wait_port 127.0.0.1 "$R" || fx_fatal "redis-server did not start"
}
redis_start 1
rcli() { redis-cli -h 127.0.0.1 -p "$R" "$@"; }

# Two connections at once to conc.test, one transaction each (so they close and open again).
for h in a b; do
  mkdir -p "$FX/$h/queue"
  fx_write_conf "$FX/$h.conf" "queue_directory=$FX/$h/queue" "log_file=$FX/$h/mxlane.log" \
      "myhostname=$h.mxlane.test" "smtp_port=$P" "notify_sender=none" "retry_schedule=1h" \
      "shared_state=redis://127.0.0.1:$R/0" "destination_concurrency=2" "max_recipients_per_transaction=1" \
      "max_messages_per_connection=1" "queue_run_delay=1s"
done
printf 'From: news@sender.test\nSubject: leases\n\nbody\n' > "$FX/msg.txt"
job() { local h=$1 tag=$2 n=$3; seq 1 "$n" | sed "s/^/$tag-$h-/; s/\$/@conc.test/" |
        "$MKJOB" "$FX/$h/queue" "$FX/msg.txt" --from news@sender.test >/dev/null; }
delivered() { "$FX_PYTHON" -c "
import json, sys
print(sum(1 for l in open('$FX/sink/accepted.jsonl') if json.loads(l)['rcpt'][0].startswith(sys.argv[1])))" "$1"; }
# The most connections the sink had open at once whose first recipient starts with TAG (HELO: only
# that host's). A connection's end is taken 50 ms early: the sink may note a closed connection's end
# a moment after the next one's start, though the host closed it before giving its lease back.
peak() { "$FX_PYTHON" -c "
import json, sys
tag, helo = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
ev = []
for l in open('$FX/sink/connections.jsonl'):
    c = json.loads(l)
    if c['rcpts'] and c['rcpts'][0]['rcpt'].startswith(tag) and (helo is None or c['helo'] == helo):
        ev += [(c['start'], 1), (c['stop'] - 0.05, -1)]
n = top = 0
for _, d in sorted(ev, key=lambda e: (e[0], e[1])):
    n += d
    top = max(top, n)
print(top)" "$@"; }
first_start() { "$FX_PYTHON" -c "
import json, sys
print(min(json.loads(l)['start'] for l in open('$FX/sink/connections.jsonl')
          if json.loads(l)['rcpts'] and json.loads(l)['rcpts'][0]['rcpt'].startswith(sys.argv[1])))" "$1"; }
members() { rcli zrange mxlane:conns:conc.test 0 -1; }

fx_spawn qrunner_a "$FX_QRUNNER" -c "$FX/a.conf" -f
A_PID=$FX_LAST_PID
fx_spawn qrunner_b "$FX_QRUNNER" -c "$FX/b.conf" -f
fx_check "both see two hosts" fx_wait_for -t 20 bash -c "grep -q 'shared_state: 2 hosts share' '$FX/qrunner_a.out' &&
    grep -q 'shared_state: 2 hosts share' '$FX/qrunner_b.out'"

# ---- 2 x 6 transactions, each holding its connection 2 s: never more than 2 connections at once
# from both together (each alone would open 2).
job a slow2-both 6
job b slow2-both 6
fx_check "12 messages delivered" fx_wait_eq -t 90 12 delivered slow2-both-
fx_check_eq "at most 2 connections at once from both hosts" 2 "$(peak slow2-both-)"
fx_check "both hosts sent" bash -c "[ \$(grep -c '\"slow2-both-a-' '$FX/sink/connections.jsonl') -ge 1 ] &&
    [ \$(grep -c '\"slow2-both-b-' '$FX/sink/connections.jsonl') -ge 1 ]"
fx_check "the leases went back as the connections closed" fx_wait_eq -t 5 0 rcli zcard mxlane:conns:conc.test

# ---- Redis stopped: no leases; each host at its share, 2 / 2 hosts = 1 connection, and says so once
fx_stop_pid "$REDIS_PID"
job a slow2-away 3
job b slow2-away 3
fx_check "6 messages delivered without Redis" fx_wait_eq -t 90 6 delivered slow2-away-
for h in a b; do
  fx_check "$h says it goes on at its share" grep -q "this host goes on alone at 1/2 of every limit" "$FX/qrunner_$h.out"
  fx_check_eq "$h at 1 connection at once" 1 "$(peak slow2-away- $h.mxlane.test)"
done
redis_start 2
for h in a b; do
  fx_check "$h shares again" fx_wait_for -t 30 bash -c \
      "[ \$(grep -c 'shared_state: limits shared through' '$FX/qrunner_$h.out') -ge 2 ]"
done

# ---- a holds both connections (30 s each) and is killed with -9: its leases outlive it for up to 10 s
seq 1 2 | sed 's/^/slow30-a-/; s/$/@conc.test/' | "$MKJOB" "$FX/a/queue" "$FX/msg.txt" --from news@sender.test >/dev/null
fx_check "a holds the 2 leases" fx_wait_for -t 20 bash -c \
    "[ \$(redis-cli -h 127.0.0.1 -p $R zrange mxlane:conns:conc.test 0 -1 | grep -c '^a.mxlane.test:') = 2 ]"
in_flight() { "$FX_CTL" -c "$FX/b.conf" hosts --json | "$FX_PYTHON" -c "
import json, sys
print({r['host']: r['in_flight'].get('conc.test', 0) for r in json.load(sys.stdin)}.get('a.mxlane.test'))"; }
fx_check "mxlanectl hosts shows them in flight" fx_wait_eq -t 5 2 in_flight
kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null
killed=$("$FX_PYTHON" -c 'import time; print(time.time())')
fx_check_eq "its leases are still in Redis" 2 "$(members | grep -c '^a.mxlane.test:')"

# ---- b, given work, waits for them to expire, then opens both connections
job b slow2-after 4
fx_check "b delivers its 4" fx_wait_eq -t 60 4 delivered slow2-after-b-
fx_check_eq "b used the whole limit: 2 connections at once" 2 "$(peak slow2-after-b- b.mxlane.test)"
waited=$("$FX_PYTHON" -c "print(int($(first_start slow2-after-b-) - $killed))")
fx_check "b's first connection waited for a's leases to expire (${waited}s after the kill, >= 5)" test "$waited" -ge 5
fx_check "a's leases are gone from Redis" bash -c "! redis-cli -h 127.0.0.1 -p $R zrange mxlane:conns:conc.test 0 -1 |
    grep -q '^a.mxlane.test:'"
fx_done
