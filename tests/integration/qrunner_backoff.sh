#!/bin/bash
# qrunner_backoff: adaptive concurrency: a 421 (every third connection) or a 4xx matching
# destination_backoff_patterns halves a destination's concurrency and pauses it; clean transactions ramp it up;
# everything is delivered in the end, each recipient once.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_backoff
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
PY=/usr/bin/python3

fx_dns_start \
  'mx-host=busy.test,mx.busy.test,10' 'host-record=mx.busy.test,127.0.0.95' \
  'mx-host=pattern.test,mx.pattern.test,10' 'host-record=mx.pattern.test,127.0.0.96'
fx_pysink_start "$FX/sink" "127.0.0.95:$P=421third" "127.0.0.96:$P"

# pattern.test: soft* recipients get "451 4.3.0", a throttle here by pattern.
fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 2s" "destination_concurrency = 4" \
  "max_messages_per_connection = 10" "destination_backoff = 3s" \
  "destination_backoff_patterns = too many connections, 4.3.0"
printf 'From: news@sender.test\nSubject: backoff\n\nbody\n' > "$FX/msg.txt"
for i in $(seq 1 60); do echo "u$i@busy.test"; done | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 > /dev/null
printf '%s\n' soft1@pattern.test p1@pattern.test p2@pattern.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 > /dev/null

at_sink() { $PY -c "
import json
print(sum(1 for l in open('$FX/sink/accepted.jsonl') for r in json.loads(l)['rcpt'] if r.endswith('@$1')))" 2>/dev/null || echo 0; }
busy_done() { [ "$(at_sink busy.test)" -ge 60 ]; }

start=$(date +%s.%N)
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
log=$FX/qrunner.out
fx_check "all 60 delivered in the end despite the 421s" fx_wait_for -t 90 busy_done
end=$(date +%s.%N)
fx_stop_pid "$qr"

backoffs=$(grep -c 'destination busy.test (mx:mx.busy.test) backing off' "$log")
ramps=$(grep -c 'destination busy.test (mx:mx.busy.test) ramping up' "$log")
conns=$(grep -c '127.0.0.95' "$FX/sink/connections.jsonl")
echo "busy.test: 60 delivered in $($PY -c "print('%.1f' % ($end - $start))") s over $conns connections; $backoffs back-offs, $ramps ramp steps"
fx_check "the first 421 halves 4 -> 2 and pauses 3s (logged)" grep -qE \
  "destination busy.test \(mx:mx.busy.test\) backing off after \"421 4.3.2 .*\": concurrency 4 -> 2, paused for 3s" "$log"
fx_check "then it ramps back up (logged)" grep -qE \
  "destination busy.test \(mx:mx.busy.test\) ramping up: concurrency [0-9]+ -> [0-9]+ of 4 after 10 clean transactions" "$log"
fx_check "the 421'd recipients were deferred, with the host's reply" grep -qE \
  "to=<u[0-9]+@busy.test>, relay=mx.busy.test\[127.0.0.95\]:$P, .*dsn=4.3.2, status=deferred \(host mx.busy.test\[127.0.0.95\] refused to talk to me: 421 " "$log"
fx_check "each recipient exactly once at the sink" $PY -c "
import json
r=[x for l in open('$FX/sink/accepted.jsonl') for x in json.loads(l)['rcpt'] if x.endswith('@busy.test')]
assert len(r) == 60 and len(set(r)) == 60, len(r)"
fx_check "the job counts say delivered" $PY -c "
import json, subprocess
j=json.loads(subprocess.check_output(['$FX_CTL','-c','$FX/mxlane.conf','jobs','--json']))
c=sum(x['counts']['delivered'] for x in j)
assert c >= 60, c"
# At the sink: after a 421 nothing new connects during the pause, and never more than 4 at once.
fx_check "a pause of ~3 s after each 421, at most 4 connections at a time" $PY -c "
import json
c=sorted((json.loads(l) for l in open('$FX/sink/connections.jsonl') if '127.0.0.95' in json.loads(l)['listener']), key=lambda c: c['start'])
for x in c:
    if x['end'] != '421': continue
    later=[y['start'] - x['start'] for y in c if y['start'] > x['stop']]  # not those already opening
    assert not later or min(later) >= 2.5, (x, later[:3])
for x in c:
    at_once=sum(1 for y in c if y['start'] <= x['start'] < y['stop'])
    assert at_once <= 4, x"

fx_check "a 4xx matching a pattern backs pattern.test off too" grep -qE \
  "destination pattern.test \(mx:mx.pattern.test\) backing off after \"451 4.3.0 .*\": concurrency 4 -> 2, paused for 3s" "$log"
fx_check_eq "... and its other recipients are delivered" 2 "$(at_sink pattern.test)"
fx_done
