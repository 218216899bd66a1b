#!/bin/bash
# qrunner_shared: two qrunners on two queues share one Redis (shared_state): a destination allowed one
# message a second gets about one a second from both together; a suppression added on one host is
# honoured by the other, and so is a pause; Redis stopped: both go on at their share and say so; Redis back: shared again.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_shared
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need redis-server redis-cli
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)
R=$(fx_port 6)

fx_dns_start 'mx-host=rate.test,mx.rate.test,10' 'host-record=mx.rate.test,127.0.0.121'
fx_pysink_start "$FX/sink" "127.0.0.121:$P"
fx_redis_start redis1 "$R"
rcli() { redis-cli -h 127.0.0.1 -p "$R" "$@"; }

# One message a second for rate.test (3600 an hour: a bucket of one token), one per transaction.
for h in a b; do
  mkdir -p "$FX/$h"
  fx_write_conf "$FX/$h.conf" "queue_directory=$FX/$h/queue" "log_file=$FX/$h/mxlane.log" \
      "myhostname=$h.mxlane.test" "smtp_port=$P" "notify_sender=none" "retry_schedule=1h" \
      "shared_state=redis://127.0.0.1:$R/0" "max_messages_per_hour=3600" "max_recipients_per_transaction=1" \
      "queue_run_delay=1s"
done
printf 'From: news@sender.test\nSubject: shared\n\nbody\n' > "$FX/msg.txt"
ctl() { local h=$1; shift; "$FX_CTL" -c "$FX/$h.conf" "$@"; }
job() { local h=$1 tag=$2 n=$3; seq 1 "$n" | sed "s/^/$tag-$h-/; s/\$/@rate.test/" |
        "$MKJOB" "$FX/$h/queue" "$FX/msg.txt" --from news@sender.test; }
# Delivery timestamps (s) of the sink's messages whose recipient starts with TAG-.
times() { "$FX_PYTHON" -c "
import json, sys
for l in open('$FX/sink/accepted.jsonl'):
    r = json.loads(l)
    if r['rcpt'][0].startswith(sys.argv[1] + '-'): print(r['t'])" "$1" | sort -n; }
# Seconds between the first and the last of them.
span() { times "$1" | "$FX_PYTHON" -c "
import sys
t = [float(x) for x in sys.stdin]
print(int(t[-1] - t[0]) if len(t) > 1 else 0)"; }
delivered() { times "$1" | wc -l; }
helos() { "$FX_PYTHON" -c "
import json, collections
c = collections.Counter(json.loads(l)['helo'] for l in open('$FX/sink/accepted.jsonl')
                        if json.loads(l)['rcpt'][0].startswith('$1-'))
print(' '.join(f'{h}={n}' for h, n in sorted(c.items())))"; }

for h in a b; do
  mkdir -p "$FX/$h/queue"
  fx_spawn "qrunner_$h" "$FX_QRUNNER" -c "$FX/$h.conf" -f
done
for h in a b; do
  fx_check "$h shares the limits through Redis" fx_wait_for -t 15 grep -q "shared_state: limits shared through" \
      "$FX/qrunner_$h.out"
done
fx_check "both see two hosts" fx_wait_for -t 10 bash -c "grep -q 'shared_state: 2 hosts share' '$FX/qrunner_a.out' &&
    grep -q 'shared_state: 2 hosts share' '$FX/qrunner_b.out'"

# ---- one message a second from both together: 2 x 8 messages take about 15 s, not 7 (each alone)
job a one 8 >/dev/null
job b one 8 >/dev/null
fx_check "16 messages delivered" fx_wait_eq -t 60 16 delivered one
s=$(span one)
fx_check "one a second from both together: 16 messages over ${s}s (>= 14)" test "$s" -ge 14
hl=$(helos one)
fx_check_eq "both hosts sent ($hl)" 2 "$(wc -w <<<"$hl")"

# ---- mxlanectl hosts: both, alive, from either host's configuration
out=$(ctl a hosts --json)
fx_check "hosts --json lists both, alive" "$FX_PYTHON" -c "
import json, sys
rows = {r['host']: r for r in json.loads(sys.argv[1])}
assert set(rows) == {'a.mxlane.test', 'b.mxlane.test'}, rows
assert all(r['alive'] and r['age_s'] <= 10 and isinstance(r['in_flight'], dict) for r in rows.values()), rows
" "$out"
fx_check "hosts (table)" bash -c "'$FX_CTL' -c '$FX/b.conf' hosts | grep -q '^a.mxlane.test .* alive'"

# ---- a suppression added on a is honoured by b
ctl a suppress add stop-b-1@rate.test >/dev/null
fx_check "b has it within a few seconds" fx_wait_for -t 5 bash -c \
    "'$FX_CTL' -c '$FX/b.conf' suppress list --json | grep -q '\"stop-b-1@rate.test\"'"
fx_check "... in Redis's hash" test "$(rcli hexists mxlane:suppressed stop-b-1@rate.test)" = 1
fx_check "... counted (mxlane:suppressed:version) and in its log of changes" bash -c \
    "[ \"\$(redis-cli -h 127.0.0.1 -p $R get mxlane:suppressed:version)\" -ge 1 ] &&
     redis-cli -h 127.0.0.1 -p $R lrange mxlane:suppressed:log 0 -1 | grep -q '^[0-9]* +stop-b-1@rate.test manual'"
jb=$(job b stop 2)
fx_check "b does not send to it" fx_wait_for -t 30 bash -c \
    "'$FX_CTL' -c '$FX/b.conf' recipients $jb --json | grep -q '\"suppressed\"'"
fx_check "b sends the other" fx_wait_eq -t 30 1 delivered stop
fx_check_eq "the sink never saw the suppressed address" "" "$(fx_pysink_rcpts "$FX/sink" | grep stop-b-1)"
ctl b suppress remove stop-b-1@rate.test >/dev/null
fx_check "a removal on b reaches a" fx_wait_for -t 5 bash -c \
    "! '$FX_CTL' -c '$FX/a.conf' suppress list --json | grep -q '\"stop-b-1@rate.test\"'"

# ---- a pause on a holds on b; a resume on b ends it on a
paused() { "$FX_CTL" -c "$FX/$1.conf" destinations --json | "$FX_PYTHON" -c "
import json, sys
print(any(r['name'] == 'rate.test' and r['paused_until'] for r in json.load(sys.stdin)))"; }
ctl a pause rate.test --for 1h >/dev/null
fx_check "a pause on a reaches b" fx_wait_eq -t 5 True paused b
ctl b resume rate.test >/dev/null
fx_check "a resume on b reaches a" fx_wait_eq -t 5 False paused a

# ---- Redis stopped mid-run: each host goes on at half the limit, says so once, loses nothing
job a down 6 >/dev/null
job b down 6 >/dev/null
fx_wait_eq -t 30 2 delivered down >/dev/null
fx_stop_pid "$REDIS_PID"
fx_check "all 12 delivered without Redis" fx_wait_eq -t 90 12 delivered down
for h in a b; do
  fx_check "$h says it goes on at its share" grep -q \
      "shared_state: redis://127.0.0.1:$R/0 does not answer (.*): this host goes on alone at 1/2 of every limit" \
      "$FX/qrunner_$h.out"
  fx_check_eq "$h says it once" 1 "$(grep -c 'goes on alone' "$FX/qrunner_$h.out")"
done
# After the first two (shared), 10 messages at 1/2 each: together still about one a second.
s=$(span down)
fx_check "at their shares: 12 messages over ${s}s (>= 9)" test "$s" -ge 9
out=$(ctl a hosts 2>&1)
fx_check_eq "hosts without Redis: exit 1" 1 $?
fx_check "... saying why" grep -q "does not answer" <<<"$out"

# ---- Redis back (empty: it kept nothing): sharing resumes, the hosts give it their suppression lists
ctl a suppress add after-1@rate.test >/dev/null
fx_redis_start redis2 "$R"
for h in a b; do
  fx_check "$h shares again" fx_wait_for -t 30 bash -c \
      "[ \$(grep -c 'shared_state: limits shared through' '$FX/qrunner_$h.out') -ge 2 ]"
done
fx_check "the suppression made while Redis was away reaches it" fx_wait_for -t 10 bash -c \
    "[ \"\$(redis-cli -h 127.0.0.1 -p $R hexists mxlane:suppressed after-1@rate.test)\" = 1 ]"
fx_check "... and b" fx_wait_for -t 10 bash -c \
    "'$FX_CTL' -c '$FX/b.conf' suppress list --json | grep -q '\"after-1@rate.test\"'"
job a back 4 >/dev/null
job b back 4 >/dev/null
fx_check "8 more delivered" fx_wait_eq -t 60 8 delivered back
s=$(span back)
fx_check "shared again: 8 messages over ${s}s (>= 6)" test "$s" -ge 6
fx_check "hosts answers again" bash -c "'$FX_CTL' -c '$FX/a.conf' hosts --json | grep -q b.mxlane.test"
# ---- a Redis that wants a password: shared_state_password_file
W=$(fx_port 7)
fx_redis_start redis_auth "$W" --requirepass s3cret
echo s3cret > "$FX/redis.pw"
echo wrong > "$FX/wrong.pw"
for pw in redis wrong; do
  fx_write_conf "$FX/$pw-auth.conf" "queue_directory=$FX/a/queue" "shared_state=redis://127.0.0.1:$W/3" \
      "shared_state_password_file=$FX/$pw.pw"
done
fx_check_eq "the right password: answered" "No host has sent a heartbeat" \
    "$("$FX_CTL" -c "$FX/redis-auth.conf" hosts 2>&1)"
out=$("$FX_CTL" -c "$FX/wrong-auth.conf" hosts 2>&1)
fx_check_eq "a wrong one: exit 1" 1 $?
fx_check "... saying that Redis refused it" grep -q "refused AUTH" <<<"$out"
# ---- rediss://: TLS, the certificate checked against shared_state_tls_CAfile
T=$(fx_port 8)
fx_make_cert "$FX/tls" redis 127.0.0.1
fx_spawn redis_tls redis-server --port 0 --tls-port "$T" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$FX/redis" --tls-cert-file "$FX/tls/redis.pem" --tls-key-file "$FX/tls/redis.key" \
    --tls-ca-cert-file "$FX/tls/ca.pem" --tls-auth-clients no
fx_wait_port 127.0.0.1 "$T" || fx_fatal "redis-server (TLS) did not start"
fx_write_conf "$FX/tls.conf" "queue_directory=$FX/a/queue" "shared_state=rediss://127.0.0.1:$T/0" \
    "shared_state_tls_CAfile=$FX/tls/ca.pem"
fx_write_conf "$FX/notrust.conf" "queue_directory=$FX/a/queue" "shared_state=rediss://127.0.0.1:$T/0"
fx_check_eq "rediss:// with the CA: answered" "No host has sent a heartbeat" "$("$FX_CTL" -c "$FX/tls.conf" hosts 2>&1)"
out=$("$FX_CTL" -c "$FX/notrust.conf" hosts 2>&1)
fx_check_eq "rediss:// without it (an unknown CA): exit 1" 1 $?
fx_done
