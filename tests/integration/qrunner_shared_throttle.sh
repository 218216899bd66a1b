#!/bin/bash
# qrunner_shared_throttle: a reply rule's throttle set on one host holds on the other (shared_state): host a
# hears a reply matching a "throttle" rule; host b then sends to that destination at the throttled rate,
# at half its concurrency, without having heard anything itself.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_shared_throttle
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need redis-server redis-cli
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
R=$(fx_port 6)

fx_dns_start 'mx-host=thr.test,mx.thr.test,10' 'host-record=mx.thr.test,127.0.0.161'
fx_pysink_start "$FX/sink" "127.0.0.161:$P"
fx_redis_start redis "$R"

# "450 4.2.1" (the sink's rated* recipients): the whole destination at most 30 a minute for 5 minutes.
printf '/^450 4\\.2\\.1 /   destination   throttle 30/m 5m\n' > "$FX/rules"
for h in a b; do
  mkdir -p "$FX/$h/queue"
  fx_write_conf "$FX/$h.conf" "queue_directory=$FX/$h/queue" "log_file=$FX/$h/mxlane.log" \
      "myhostname=$h.mxlane.test" "smtp_port=$P" "notify_sender=none" "retry_schedule=1h" \
      "shared_state=redis://127.0.0.1:$R/0" "max_recipients_per_transaction=1" "destination_concurrency=4" \
      "reply_rules=$FX/rules" "queue_run_delay=1s"
done
printf 'From: news@sender.test\nSubject: throttled\n\nbody\n' > "$FX/msg.txt"
ctl() { local h=$1; shift; "$FX_CTL" -c "$FX/$h.conf" "$@"; }
job() { local h=$1; shift; printf '%s\n' "$@" | "$MKJOB" "$FX/$h/queue" "$FX/msg.txt" --from news@sender.test; }
times() { "$FX_PYTHON" -c "
import json, sys
for l in open('$FX/sink/accepted.jsonl'):
    r = json.loads(l)
    if r['rcpt'][0].startswith(sys.argv[1] + '-'): print(r['t'])" "$1" | sort -n; }
delivered() { times "$1" | wc -l; }
span() { times "$1" | "$FX_PYTHON" -c "
import sys
t = [float(x) for x in sys.stdin]
print(int(t[-1] - t[0]) if len(t) > 1 else 0)"; }
limit() { ctl "$1" destinations --json | "$FX_PYTHON" -c "
import json, sys
print([r['limit'] for r in json.load(sys.stdin) if r['name'] == 'thr.test'])"; }

for h in a b; do
  fx_spawn "qrunner_$h" "$FX_QRUNNER" -c "$FX/$h.conf" -f
  fx_check "$h shares the limits through Redis" fx_wait_for -t 15 grep -q "shared_state: limits shared through" \
      "$FX/qrunner_$h.out"
done

# ---- without a throttle, b sends 4 at once (no rate limit configured)
job b free-1@thr.test free-2@thr.test free-3@thr.test free-4@thr.test >/dev/null
fx_check "b sends 4 unthrottled" fx_wait_eq -t 30 4 delivered free
s=$(span free)
fx_check "... within a second or two (${s}s)" test "$s" -le 2

# ---- a hears "450 4.2.1": the rule throttles thr.test on a, and through Redis on b
job a rated-1@thr.test >/dev/null
fx_check "a throttles thr.test" fx_wait_for -t 30 grep -q "destination thr.test .* backing off after \"450 4.2.1.*at most 1 message/2s for 300s" \
    "$FX/qrunner_a.out"
fx_check "the throttle is in Redis's hash" fx_wait_for -t 5 bash -c \
    "redis-cli -h 127.0.0.1 -p $R hget mxlane:throttled thr.test | grep -q '^[0-9]* 0.5 450 4.2.1'"
fx_check "b hears of it" fx_wait_for -t 5 grep -q "shared_state: thr.test throttled by another host" "$FX/qrunner_b.out"
fx_check "b applies it to its destination" fx_wait_for -t 5 grep -q \
    "destination thr.test throttled by another host: at most 1800 messages an hour until .*, concurrency 2: 450 4.2.1" \
    "$FX/qrunner_b.out"
fx_check_eq "b's concurrency for thr.test halved (mxlanectl destinations)" "[2]" "$(limit b)"

# ---- b now sends at 30 a minute: 5 messages, one every 2 s, the first at once
job b slow-1@thr.test slow-2@thr.test slow-3@thr.test slow-4@thr.test slow-5@thr.test >/dev/null
fx_check "b delivers the 5" fx_wait_eq -t 60 5 delivered slow
s=$(span slow)
fx_check "at the throttled rate: 5 messages over ${s}s (>= 7)" test "$s" -ge 7
fx_done
