#!/bin/bash
# qrunner_shaping: per-destination traffic shaping from destination_policy, measured at the sinks over a run:
# max_messages_per_hour, max_connections_per_minute, max_recipients_per_transaction, max_messages_per_connection,
# destination_concurrency; a SIGHUP reload of the policy while connections are open.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_shaping
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
PY=/usr/bin/python3

fx_dns_start \
  'mx-host=rate.test,mx.rate.test,10' 'host-record=mx.rate.test,127.0.0.91' \
  'mx-host=conn.test,mx.conn.test,10' 'host-record=mx.conn.test,127.0.0.92' \
  'mx-host=batch.test,mx.batch.test,10' 'host-record=mx.batch.test,127.0.0.93'
fx_pysink_start "$FX/sink" "127.0.0.91:$P" "127.0.0.92:$P" "127.0.0.93:$P"

# rate.test: 3600 an hour, about one a second. conn.test: 12 new connections a
# minute (one every 5 s), one message each. batch.test: 3 recipients a
# transaction, 2 messages a connection, one connection at a time.
policy() {
  cat > "$FX/destinations" <<EOT
rate.test   max_messages_per_hour=$1
conn.test   max_connections_per_minute=12 max_messages_per_connection=1
batch.test  max_recipients_per_transaction=3 max_messages_per_connection=2 destination_concurrency=1
EOT
}
policy 3600
fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 1h" "destination_policy = $FX/destinations"
printf 'From: news@sender.test\nSubject: shaping\n\nbody\n' > "$FX/msg.txt"
for i in $(seq 1 100); do echo "r$i@rate.test"; done | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 > "$FX/rate.job"
for i in $(seq 1 20); do echo "c$i@conn.test"; done | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 > /dev/null
for i in $(seq 1 10); do echo "b$i@batch.test"; done | "$MKJOB" "$FX/queue" "$FX/msg.txt" > /dev/null
for i in $(seq 1 6); do echo "s$i@batch.test"; done | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 > /dev/null

# Delivered count per domain at the sink, and what the accepted.jsonl says about them.
at_sink() { $PY -c "
import json
print(sum(1 for l in open('$FX/sink/accepted.jsonl') for r in json.loads(l)['rcpt'] if r.endswith('@$1')))" 2>/dev/null || echo 0; }

fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
log=$FX/qrunner.out
sleep 15

# ---- max_messages_per_hour = 3600: about one a second, measured over the run so far
read -r n rate <<<"$($PY -c "
import json
t=[json.loads(l)['t'] for l in open('$FX/sink/accepted.jsonl') if '@rate.test' in l]
t.sort()
print(len(t), '%.2f' % ((len(t)-1)/(t[-1]-t[0])) if len(t) > 1 else 0)")"
echo "rate.test: $n delivered in the first 15 s, $rate a second between the first and the last"
fx_check "3600/h: 10..18 delivered in 15 s ($n)" test "$n" -ge 10 -a "$n" -le 18
fx_check "3600/h: 0.75..1.25 a second ($rate)" $PY -c "assert 0.75 <= $rate <= 1.25"
# What would wait more than a minute went back to the store, untried, due later.
fx_check "the rest went back to the queue store (logged)" grep -qE \
  "destination rate.test \(mx:mx.rate.test\): [0-9]+ transactions back to the queue, due within [0-9]+s \(max_messages_per_hour\)" "$log"
# About 60 s worth (60) waits in memory; the other ~40 were parked.
parked=$(grep -oE "destination rate.test .*: [0-9]+ transactions back to the queue" "$log" |
         grep -oE "[0-9]+ transactions" | awk '{n += $1} END {print n + 0}')
fx_check "... ~40 of them ($parked)" test "$parked" -ge 30 -a "$parked" -le 45
# (mkjob --per-message 1 makes a job per message: rate.job lists 100 jobs.)
fx_check "... the last one untried and due in more than a minute" $PY -c "
import json, subprocess, datetime
r=json.loads(subprocess.check_output(['$FX_CTL','-c','$FX/mxlane.conf','recipients','$(tail -n 1 "$FX/rate.job")','--json']))[0]
due=datetime.datetime.strptime(r['next_attempt'],'%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
left=(due-datetime.datetime.now(datetime.timezone.utc)).total_seconds()
assert r['state']=='queued' and r['attempts']==0 and 60 < left < 120, (r, left)"

# ---- max_connections_per_minute = 12: connections counted at the sink
read -r nc span <<<"$($PY -c "
import json
s=sorted(json.loads(l)['start'] for l in open('$FX/sink/connections.jsonl') if '127.0.0.92' in json.loads(l)['listener'])
print(len(s), '%.1f' % (s[-1]-s[0]) if s else 0)")"
echo "conn.test: $nc connections over ${span}s"
fx_check "12/min: 2..5 connections in 15 s ($nc)" test "$nc" -ge 2 -a "$nc" -le 5
fx_check "12/min: no two connections closer than ~5 s on average" $PY -c "assert $nc < 2 or $span / ($nc - 1) >= 4.5"
fx_check_eq "... one message each" "$nc" "$(at_sink conn.test)"

# ---- SIGHUP: rate.test to 36000/h (ten a second) with its connection open
policy 36000
kill -HUP "$qr"
fx_check "reload logged" fx_wait_for -t 5 grep -q "reloaded $FX/mxlane.conf" "$log"
t0=$(date +%s.%N)
rate_held_done() { [ "$(at_sink rate.test)" -ge 60 ]; }
fx_check "after the reload, what rate.test held (60) goes quickly" fx_wait_for -t 15 rate_held_done
t1=$(date +%s.%N)
echo "rate.test: the held ones done $($PY -c "print('%.1f' % ($t1 - $t0))") s after SIGHUP"
fx_check "conn.test shaping still in force after the reload" $PY -c "
import json
s=sorted(json.loads(l)['start'] for l in open('$FX/sink/connections.jsonl') if '127.0.0.92' in json.loads(l)['listener'])
assert len(s) < 2 or (s[-1]-s[0]) / (len(s)-1) >= 4.5, s"

fx_stop_pid "$qr"
fx_check "the qrunner stopped cleanly" grep -q "stopped" "$log"
# Nothing dropped: rate.test's connection lived through the reload and ended with QUIT.
fx_check "rate.test: one connection, through the reload, closed normally" $PY -c "
import json
c=[json.loads(l) for l in open('$FX/sink/connections.jsonl') if '127.0.0.91' in json.loads(l)['listener']]
assert len(c) == 1 and c[0]['end'] == 'closed' and c[0]['messages'] >= 60, c"
fx_check_eq "nothing deferred" 0 "$(grep -c 'status=deferred' "$log")"

# ---- batch.test: recipients per transaction, messages per connection, one connection at a time
fx_check_eq "batch.test: all 16 delivered" 16 "$(at_sink batch.test)"
fx_check "batch.test: transactions of at most 3 recipients (3,3,3,1 for the shared message)" $PY -c "
import json
n=sorted(len(json.loads(l)['rcpt']) for l in open('$FX/sink/accepted.jsonl') if '@batch.test' in l and 'b' in json.loads(l)['rcpt'][0][:1])
assert n == [1,3,3,3], n"
fx_check "batch.test: at most 2 messages a connection, never two connections at once" $PY -c "
import json
c=sorted((json.loads(l) for l in open('$FX/sink/connections.jsonl') if '127.0.0.93' in json.loads(l)['listener']), key=lambda c: c['start'])
assert all(x['messages'] <= 2 for x in c), [x['messages'] for x in c]
assert sum(x['messages'] for x in c) == 10, c
assert all(a['stop'] <= b['start'] for a, b in zip(c, c[1:])), c"
fx_done
