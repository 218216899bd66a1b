#!/bin/bash
# qrunner_shared_warmup: two qrunners on two queues send from one address (a VIP, or NAT) through one Redis
# (shared_state): its warm-up cap towards a provider holds for both together, the rest waits; the address's
# first day is shared, so a new host goes on with its warm-up rather than start it again.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_shared_warmup
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need redis-server redis-cli
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
R=$(fx_port 6)

fx_dns_start 'mx-host=warm.test,mx.warm.test,10' 'host-record=mx.warm.test,127.0.0.161' \
  'host-record=out2.warm.test,127.0.0.2'
fx_pysink_start "$FX/sink" "127.0.0.161:$P"
mkdir -p "$FX/redis"
fx_spawn redis redis-server --port "$R" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$FX/redis"
REDIS_PID=$FX_LAST_PID
fx_wait_port 127.0.0.1 "$R" || fx_fatal "redis-server did not start"
rcli() { redis-cli -h 127.0.0.1 -p "$R" "$@"; }

# Another host first sent from 127.0.0.2 yesterday: day 2 of its warm-up, a cap of 4 (day 1 would be 3).
today=$(( $(date -u +%s) / 86400 ))
rcli SET mxlane:warmup-first:127.0.0.2 $((today - 1)) >/dev/null
printf 'news 127.0.0.2 out2.warm.test\n' > "$FX/pools"
for h in a b; do
  mkdir -p "$FX/$h/queue"
  fx_write_conf "$FX/$h.conf" "queue_directory=$FX/$h/queue" "log_file=$FX/$h/mxlane.log" \
      "myhostname=$h.mxlane.test" "smtp_port=$P" "notify_sender=none" "retry_schedule=1h" \
      "shared_state=redis://127.0.0.1:$R/0" "source_pools=$FX/pools" "default_pool=news" \
      "warmup_schedule=3 4 10" "max_recipients_per_transaction=1" "queue_run_delay=1s"
done
printf 'From: news@sender.test\nSubject: warm\n\nbody\n' > "$FX/msg.txt"
ctl() { local h=$1; shift; "$FX_CTL" -c "$FX/$h.conf" "$@"; }
states() { ctl "$1" recipients "$2" --json | "$FX_PYTHON" -c "
import json,sys,collections
print(' '.join('%s=%d' % kv for kv in sorted(collections.Counter(r['state'] for r in json.load(sys.stdin)).items())))"; }
accepted() { [ -f "$FX/sink/accepted.jsonl" ] && wc -l < "$FX/sink/accepted.jsonl" || echo 0; }

for h in a b; do
  fx_spawn "qrunner_$h" "$FX_QRUNNER" -c "$FX/$h.conf" -f
  QR="$QR $FX_LAST_PID"
done
fx_check "both see two hosts" fx_wait_for -t 15 bash -c "grep -q 'shared_state: 2 hosts share' '$FX/qrunner_a.out' &&
    grep -q 'shared_state: 2 hosts share' '$FX/qrunner_b.out'"

# ---- five recipients on each host; the address's cap today is 4 for both together
ja=$(printf 'a%d@warm.test\n' 1 2 3 4 5 | "$MKJOB" "$FX/a/queue" "$FX/msg.txt" --name ja)
jb=$(printf 'b%d@warm.test\n' 1 2 3 4 5 | "$MKJOB" "$FX/b/queue" "$FX/msg.txt" --name jb)
for h in a b; do
  fx_check "$h: what is over the cap waits, counted across hosts" fx_wait_for -t 30 \
    grep -q "warm-up: [0-9]* recipients for warm.test (mx:mx.warm.test) wait for the cap to have room: .*counted across hosts" \
    "$FX/qrunner_$h.out"
done
fx_check "4 messages sent by both together" fx_wait_eq -t 30 4 accepted
fx_check_eq "... every one from 127.0.0.2 with out2.warm.test" "127.0.0.2 out2.warm.test" "$("$FX_PYTHON" -c "
import json
print(' '.join(sorted({json.loads(l)['peer'].rsplit(':',1)[0] + ' ' + json.loads(l)['helo'] for l in open('$FX/sink/accepted.jsonl')})))")"
fx_check_eq "the rest waits, queued (4 delivered, 6 queued in all)" "4 6" "$("$FX_PYTHON" -c "
import sys
d = q = 0
for s in sys.argv[1:]:
    for kv in s.split():
        k, v = kv.split('=')
        d += int(v) if k == 'delivered' else 0
        q += int(v) if k == 'queued' else 0
print(d, q)" "$(states a "$ja")" "$(states b "$jb")")"
day=$(date -u +%Y%m%d)
fx_check_eq "Redis counts 4 for the address towards the provider today" 4 \
  "$(rcli GET "mxlane:warmup:127.0.0.2:mx:mx.warm.test:$day")"
fx_check_eq "... kept two days at most" 1 "$(rcli TTL "mxlane:warmup:127.0.0.2:mx:mx.warm.test:$day" |
  awk '{print ($1 > 0 && $1 <= 172800)}')"
fx_check_eq "the shared first day stands: both hosts on day 2 (pools)" "2 2" \
  "$(for h in a b; do ctl $h pools --json | "$FX_PYTHON" -c "
import json,sys
print(json.load(sys.stdin)[0]['day'])"; done | tr '\n' ' ' | sed 's/ $//')"

# ---- mxlanectl pools warmup moves the shared first day too, and refuses when Redis cannot take it.
fx_check "pools warmup ADDRESS 3 on a" ctl a pools warmup 127.0.0.2 3
fx_check_eq "... Redis holds the new first day for every host" "$((today - 2))" "$(rcli GET mxlane:warmup-first:127.0.0.2)"

# ---- Redis away: each host counts alone against its share of the cap (cap / hosts last seen).
# A new address, 127.0.0.3 (day 1: a cap of 3): one each (3 / 2 hosts), the rest waits for the next day.
fx_stop_pid "$REDIS_PID"
out=$(ctl a pools warmup 127.0.0.2 5 2>&1); rc=$?
fx_check_eq "pools warmup with Redis away fails (exit 2, an error)" 2 "$rc"
fx_check "... saying nothing changed" grep -q "did not take the new first day; nothing changed" <<<"$out"
fx_check_eq "... and a's store keeps day 3" 3 "$(ctl a pools --json | "$FX_PYTHON" -c "
import json,sys
print(json.load(sys.stdin)[0]['day'])")"
printf 'news 127.0.0.2 out2.warm.test\nfresh 127.0.0.3 out3.warm.test\n' > "$FX/pools"
for pid in $QR; do kill -HUP "$pid"; done
for h in a b; do
  fx_check "$h reloads the pools" fx_wait_for -t 10 grep -q "reloaded" "$FX/qrunner_$h.out"
done
jc=$(printf 'c%d@warm.test\n' 1 2 3 | "$MKJOB" "$FX/a/queue" "$FX/msg.txt" --name jc --pool fresh)
jd=$(printf 'd%d@warm.test\n' 1 2 3 | "$MKJOB" "$FX/b/queue" "$FX/msg.txt" --name jd --pool fresh)
for h in a b; do
  fx_check "$h says that it counts alone" fx_wait_for -t 30 \
    grep -q "does not answer for the warm-up counts: this host counts alone against its share" "$FX/qrunner_$h.out"
  fx_check "$h: the rest waits for the next day" fx_wait_for -t 30 \
    grep -q "warm-up: 2 recipients for warm.test (mx:mx.warm.test) wait for the next day" "$FX/qrunner_$h.out"
done
fx_check_eq "... once each" "1 1" "$(for h in a b; do
  grep -c 'does not answer for the warm-up counts' "$FX/qrunner_$h.out"; done | tr '\n' ' ' | sed 's/ $//')"
fx_check_eq "one from each host: delivered=1 queued=2 on each" "delivered=1 queued=2 delivered=1 queued=2" \
  "$(states a "$jc") $(states b "$jd")"
fx_check_eq "... from 127.0.0.3" 2 "$(grep -c '"peer": "127.0.0.3:' "$FX/sink/accepted.jsonl")"

for pid in $QR; do fx_stop_pid "$pid"; done
fx_done
