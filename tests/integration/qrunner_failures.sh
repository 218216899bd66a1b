#!/bin/bash
# qrunner_failures: the failure paths: a 5xx greeting defers (next MX, never a bounce); an exception inside
# a delivery still gives every recipient an outcome (--once ends); SIGTERM does not wait for a server that
# never answers (shutdown_timeout); mxlanectl flush retries a destination paused as unreachable; MX limits and smtp_prohibited_networks; a job held while it is delivered stops once its transactions end.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_failures
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
PY=/usr/bin/python3

fx_dns_start \
  'mx-host=skip.test,mx1.skip.test,10' 'mx-host=skip.test,mx2.skip.test,20' \
  'host-record=mx1.skip.test,127.0.0.81' 'host-record=mx2.skip.test,127.0.0.82' \
  'mx-host=listed.test,mx.listed.test,10' 'host-record=mx.listed.test,127.0.0.83' \
  'mx-host=slow.test,mx.slow.test,10' 'host-record=mx.slow.test,127.0.0.84' \
  'mx-host=a-secure.test,mx.shared.test,10' 'mx-host=b-plain.test,mx.shared.test,10' \
  'mx-host=y-secure.test,mx.shared.test,10' 'mx-host=z-plain.test,mx.shared.test,10' \
  'host-record=mx.shared.test,127.0.0.82' \
  'mx-host=loop.test,mx.loop.test,10' 'host-record=mx.loop.test,127.0.0.89' \
  'mx-host=fix.test,mx.fix.test,10' 'host-record=mx.fix.test,127.0.0.90' \
  'mx-host=zero.test,mx.zero.test,10' 'host-record=mx.zero.test,0.0.0.0' \
  'mx-host=banned.test,mx.banned.test,10' 'host-record=mx.banned.test,127.0.0.85' \
  'mx-host=three.test,mx1.three.test,10' 'mx-host=three.test,mx2.three.test,20' 'mx-host=three.test,mx3.three.test,30' \
  'host-record=mx1.three.test,127.0.0.86' 'host-record=mx2.three.test,127.0.0.87' 'host-record=mx3.three.test,127.0.0.88' \
  $(for i in $(seq 10 29); do echo "mx-host=many.test,mx$i.many.test,$i host-record=mx$i.many.test,127.0.1.$i"; done)
fx_pysink_start "$FX/sink" "127.0.0.81:$P=greet554" "127.0.0.82:$P" "127.0.0.83:$P=greet554" "127.0.0.84:$P" \
  "127.0.0.85:$P" "127.0.0.86:$P=greet554" "127.0.0.87:$P=greet554" "127.0.0.88:$P=greet554" "127.0.0.89:$P"
printf 'From: news@sender.test\nSubject: failures\n\nbody\n' > "$FX/msg.txt"

# recipients JOB: "address state dsn" lines, sorted.
recipients() {
  "$FX_CTL" -c "$CONF" recipients "$1" --json | $PY -c '
import json, sys
for r in sorted(json.load(sys.stdin), key=lambda r: r["address"]):
    print(r["address"], r["state"], r["dsn"])'
}
count() { "$FX_CTL" -c "$CONF" job "$1" --json | $PY -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
state_count() { "$FX_CTL" -c "$CONF" job "$1" --json | $PY -c "import json,sys; print(json.load(sys.stdin)['counts']['$2'])"; }
at_sink() { $PY -c "
import json
print(sum(len(json.loads(l)['rcpt']) for l in open('$FX/sink/accepted.jsonl')))" 2>/dev/null || echo 0; }

# ---- 1. A 5xx greeting: the next MX delivers; when every MX greets 5xx the recipients are deferred.
CONF=$FX/mxlane.conf
# myhostname is what the sink at 127.0.0.89 calls itself: mail by MX to it loops back to "us".
fx_write_conf "$CONF" "smtp_port = $P" "retry_schedule = 1h" \
  "smtp_prohibited_networks = 0.0.0.0/8, [::]/128, 127.0.0.85" "myhostname = sink-127.0.0.89"
{ for i in $(seq 1 50); do printf 'Received: from hop%d.test by hop%d.test; Tue, 1 Dec 2026 10:00:00 +0000\n' $i $i; done
  printf 'From: news@sender.test\nSubject: looping\n\nbody\n'; } > "$FX/hops50.txt"
{ for i in $(seq 1 49); do printf 'Received: from hop%d.test by hop%d.test; Tue, 1 Dec 2026 10:00:00 +0000\n' $i $i; done
  printf 'From: news@sender.test\nSubject: hops49\n\nbody\n'; } > "$FX/hops49.txt"
jl=$(printf '%s\n' l@loop.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
jh50=$(printf '%s\n' h50@skip.test | "$MKJOB" "$FX/queue" "$FX/hops50.txt")
jh49=$(printf '%s\n' h49@skip.test | "$MKJOB" "$FX/queue" "$FX/hops49.txt")
j1=$(printf '%s\n' a@skip.test b@skip.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
j2=$(printf '%s\n' c@listed.test d@listed.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
j3=$(printf '%s\n' e@listed.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
j7=$(printf '%s\n' z@zero.test b@banned.test t@three.test m@many.test | "$MKJOB" "$FX/queue" "$FX/msg.txt")
timeout 60 "$FX_QRUNNER" -c "$CONF" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "554 greeting from the first MX: the second delivers" \
  "$(printf 'a@skip.test delivered 2.0.0\nb@skip.test delivered 2.0.0')" "$(recipients "$j1")"
fx_check_eq "every MX greets 554: deferred (4.7.1), not bounced" \
  "$(printf 'c@listed.test deferred 4.7.1\nd@listed.test deferred 4.7.1')" "$(recipients "$j2")"
fx_check_eq "... and the other job of that MX set too" "e@listed.test deferred 4.7.1" "$(recipients "$j3")"
fx_check "the log says the host refused to talk" \
  grep -qE 'to=<c@listed.test>.*dsn=4\.7\.1, status=deferred \(.*refused to talk to me: 554 5\.7\.1' "$FX/mxlane.log"
conns() { $PY -c "
import json, sys
print(sum(1 for l in open('$FX/sink/connections.jsonl') if json.loads(l)['ip'] in sys.argv[1:]))" "$@"; }
fx_check_eq "MX limits and prohibited networks: all deferred" \
  "$(printf 'b@banned.test deferred 4.4.4\nm@many.test deferred 4.4.1\nt@three.test deferred 4.7.1\nz@zero.test deferred 4.4.4')" \
  "$(recipients "$j7")"
fx_check "an MX at 0.0.0.0 is never connected to" grep -q 'mx.zero.test\[0.0.0.0\] is in smtp_prohibited_networks' "$FX/mxlane.log"
fx_check_eq "an MX in smtp_prohibited_networks is never connected to" 0 "$(conns 127.0.0.85)"
fx_check_eq "three MX hosts that refuse: two sessions (smtp_mx_session_limit)" 2 "$(conns 127.0.0.86 127.0.0.87 127.0.0.88)"
fx_check_eq "20 MX hosts that refuse connections: five tried (smtp_mx_address_limit)" 5 \
  "$(grep -c 'qrunner\[[0-9]*\]: connect to mx[0-9]*\.many\.test' "$FX/mxlane.log")"
fx_check_eq "an MX that greets with our own name: a loop, bounced" "l@loop.test bounced 5.4.6" "$(recipients "$jl")"
fx_check "... saying so" grep -q 'to=<l@loop.test>.*status=bounced (mail for loop.test loops back to myself \[class=network\])' "$FX/mxlane.log"
fx_check_eq "50 Received: lines already: bounced (5.4.6)" "h50@skip.test bounced 5.4.6" "$(recipients "$jh50")"
fx_check_eq "49: sent, with ours the 50th" "h49@skip.test delivered 2.0.0" "$(recipients "$jh49")"
fx_check "every message sent carries mxlane's Received: line first" $PY -c "
import re
text = open('$FX/sink/127.0.0.82.mbox', 'rb').read().decode('latin-1')
msgs = [m for m in re.split(r'(?m)^From pysink@', text) if 'Subject:' in m]
assert msgs, 'no messages'
for m in msgs:
    first = [l for l in m.splitlines()[1:] if l and not l.startswith('X-Sink')][0]
    assert re.match(r'Received: by sink-127\.0\.0\.89 \(mxlane\) id J[0-9A-F]+\.[0-9]+;', first), first
"
fx_check_eq "nothing was suppressed" "[]" "$("$FX_CTL" -c "$CONF" suppress list --json | tr -d ' \n')"

# ---- 2. An exception inside a delivery (the loop key cannot be read on the relay path): every recipient
# still gets an outcome and --once ends.
CONF=$FX/relay.conf
mkdir -p "$FX/q2"
fx_write_conf "$CONF" "queue_directory = $FX/q2" "delivery_mode = relay" "relay_host = [127.0.0.82]:$P" \
  "retry_schedule = 1h"
j4=$(printf '%s\n' r1@far.test r2@far.test r3@other.test | "$MKJOB" "$FX/q2" "$FX/msg.txt")
: > "$FX/q2/loop.key"   # damaged: 0 bytes
timeout 30 "$FX_QRUNNER" -c "$CONF" --once
fx_check_eq "qrunner --once ends although every delivery threw" 0 $?
fx_check_eq "each recipient deferred (4.3.0), none left in flight" \
  "$(printf 'r1@far.test deferred 4.3.0\nr2@far.test deferred 4.3.0\nr3@other.test deferred 4.3.0')" \
  "$(recipients "$j4")"
fx_check_eq "in flight: 0" 0 "$(count "$j4" inflight)"
fx_check "the log names the reason" grep -q 'loop.key is damaged' "$FX/mxlane.log"

# ---- 3. SIGTERM while a server never answers the end of DATA: the qrunner leaves after
# shutdown_timeout, and the recipient is due again (not in flight, attempts unchanged).
CONF=$FX/term.conf
mkdir -p "$FX/q3"
fx_write_conf "$CONF" "queue_directory = $FX/q3" "smtp_port = $P" "shutdown_timeout = 2s" \
  "smtp_data_done_timeout = 600s"
j5=$(printf '%s\n' slowdata600x@slow.test | "$MKJOB" "$FX/q3" "$FX/msg.txt")
fx_spawn term "$FX_QRUNNER" -c "$CONF" -f
qr=$FX_LAST_PID
inflight_is() { [ "$(count "$1" inflight)" = "$2" ]; }
fx_check "the message is on the wire" fx_wait_for -t 20 inflight_is "$j5" 1
sleep 2
t0=$(date +%s%N)
kill -TERM "$qr"
fx_check "qrunner exits within shutdown_timeout and a little" fx_wait_for -t 8 bash -c "! kill -0 $qr"
secs=$(( ($(date +%s%N) - t0) / 1000000000 ))
fx_log "qrunner left ${secs}s after SIGTERM"
fx_check "it said it abandoned the connection" grep -q 'shutdown_timeout (2s) reached: abandoning 1 connections' "$FX/term.out"
fx_check_eq "the recipient is due again, untried" "slowdata600x@slow.test queued 0" \
  "$("$FX_CTL" -c "$CONF" recipients "$j5" --json | $PY -c '
import json, sys
for r in json.load(sys.stdin): print(r["address"], r["state"], r["attempts"])')"
fx_check_eq "in flight: 0" 0 "$(count "$j5" inflight)"
fx_stop_pid "$qr"

# ---- 4. Two domains on one MX, one of them with smtp_tls_security_level=encrypt: each keeps its own
# policy, whichever comes first (the MX offers no STARTTLS).
CONF=$FX/tls.conf
mkdir -p "$FX/q5"
printf 'a-secure.test smtp_tls_security_level=encrypt\ny-secure.test smtp_tls_security_level=encrypt\n' > "$FX/policy"
fx_write_conf "$CONF" "queue_directory = $FX/q5" "smtp_port = $P" "destination_policy = $FX/policy" \
  "retry_schedule = 1h"
j8=$(printf '%s\n' s@a-secure.test p@b-plain.test s@y-secure.test p@z-plain.test | "$MKJOB" "$FX/q5" "$FX/msg.txt")
timeout 60 "$FX_QRUNNER" -c "$CONF" --once
fx_check_eq "the encrypt domains are deferred, the plain ones delivered" \
  "$(printf 'p@b-plain.test delivered 2.0.0\np@z-plain.test delivered 2.0.0\ns@a-secure.test deferred 4.7.4\ns@y-secure.test deferred 4.7.4')" \
  "$(recipients "$j8")"

# ---- 5. hold while the job is being delivered: what is on the wire ends, nothing more is sent;
# release sends the rest.
CONF=$FX/hold.conf
mkdir -p "$FX/q4"
fx_write_conf "$CONF" "queue_directory = $FX/q4" "smtp_port = $P" "destination_concurrency = 4" \
  "max_messages_per_connection = 1000" "retry_schedule = 1h"
base=$(at_sink)
j6=$(for i in $(seq 1 120); do echo "slowdata1n$i@slow.test"; done | "$MKJOB" "$FX/q4" "$FX/msg.txt" --per-message 1 --name holdjob)
fx_spawn hold "$FX_QRUNNER" -c "$CONF" -f
qr=$FX_LAST_PID
sent() { echo $(( $(at_sink) - base )); }
sent_at_least() { [ "$(sent)" -ge "$1" ]; }
fx_check "delivery under way" fx_wait_for -t 30 sent_at_least 8
"$FX_CTL" -c "$CONF" hold "$j6" >/dev/null
at_hold=$(sent)
sleep 6
after=$(sent)
fx_log "delivered at the hold: $at_hold, 6 s later: $after"
fx_check "after the hold only the transactions on the wire ended ($at_hold -> $after)" test $((after - at_hold)) -le 8
fx_check_eq "nothing of the job in flight" 0 "$(count "$j6" inflight)"
fx_check_eq "every recipient delivered (as the sink saw) or held" 120 \
  $(( $(state_count "$j6" delivered) + $(state_count "$j6" held) ))
fx_check_eq "delivered as the sink counted" "$after" "$(state_count "$j6" delivered)"
"$FX_CTL" -c "$CONF" release "$j6" >/dev/null
all_delivered() { [ "$(state_count "$1" delivered)" = 120 ]; }
fx_check "release sends the rest" fx_wait_for -t 60 all_delivered "$j6"
fx_stop_pid "$qr"

# ---- 6. A destination paused as unreachable: once the server is there, mxlanectl flush retries it at
# once (it does not replay the old "Connection refused" and push the retry an hour out).
CONF=$FX/flush.conf
mkdir -p "$FX/q6"
fx_write_conf "$CONF" "queue_directory = $FX/q6" "smtp_port = $P" "retry_schedule = 1h"
j9=$(printf '%s\n' f1@fix.test | "$MKJOB" "$FX/q6" "$FX/msg.txt")
fx_spawn flush "$FX_QRUNNER" -c "$CONF" -f
qr=$FX_LAST_PID
state_is() { [ "$(recipients "$1")" = "$2" ]; }
fx_check "nothing listens yet: deferred" fx_wait_for -t 20 state_is "$j9" "f1@fix.test deferred 4.4.1"
fx_pysink_start "$FX/sink2" "127.0.0.90:$P"
"$FX_CTL" -c "$CONF" flush >/dev/null
fx_check "after flush the paused destination is tried again and delivers" \
  fx_wait_for -t 15 state_is "$j9" "f1@fix.test delivered 2.0.0"
fx_check "the qrunner says why" grep -q 'mxlanectl flush: 1 destinations paused as unreachable are tried again' "$FX/flush.out"
fx_stop_pid "$qr"
fx_done
