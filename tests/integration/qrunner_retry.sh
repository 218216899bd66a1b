#!/bin/bash
# qrunner_retry: retry_schedule = 1s 2s under the daemon (deferred -> retried -> delivered once the sink
# recovers), max_queue_lifetime -> expired, flush, and a paused destination retried as a whole.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_retry
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=flaky.test,mx.flaky.test,10' 'host-record=mx.flaky.test,127.0.0.91' \
  'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.92' \
  'mx-host=down.test,mx.down.test,10' 'host-record=mx.down.test,127.0.0.93'
fx_pysink_start "$FX/ok" "127.0.0.92:$P"
printf 'From: news@sender.test\nSubject: retry\n\nbody\n' > "$FX/msg.txt"
conf() {
    fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "notify_sender=none" "queue_run_delay=1s" "$@"
}
recips() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$1" --json; }
field() { recips "$1" | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$2': print(r['$3'])"; }
log=$FX/mxlane.log

# ---- 1. a sink that refuses every RCPT with 4xx, then recovers
conf "retry_schedule=1s 2s"
fx_smtp_sink flaky 127.0.0.91 "$P" -r RCPT
job=$(printf '%s\n' r1@flaky.test r2@flaky.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
QR=$FX_LAST_PID
log=$FX/qrunner.out   # -f logs to stderr
# 1 s, then 2 s (plus up to 10%): a third attempt about 3.3 s after the first at most.
fx_check "deferred, then retried on schedule" fx_wait_for -t 8 bash -c \
    "[ \$(grep -c 'to=<r1@flaky.test>.*status=deferred' '$log') -ge 3 ]"
fx_check_eq "still deferred while the sink refuses" deferred "$(field "$job" r1@flaky.test state)"
t=$(grep 'to=<r1@flaky.test>.*status=deferred' "$log" | head -n 3 | awk '{print $3}' | tr '\n' ' ')
fx_check "attempts 1 s then 2 s apart (log times: $t)" "$FX_PYTHON" -c "
import sys
t=[sum(int(x)*m for x,m in zip(s.split(':'),(3600,60,1))) for s in '$t'.split()]
g=[b-a for a,b in zip(t,t[1:])]
assert 0 <= g[0] <= 3 and 1 <= g[1] <= 4, g"
fx_stop_pid "$(cat "$FX/sinks/flaky/pid")"
fx_pysink_start "$FX/flaky" "127.0.0.91:$P"
fx_check "delivered once the sink recovers" fx_wait_eq -t 10 delivered field "$job" r1@flaky.test state
fx_check "r2 too (each has its own jitter)" fx_wait_eq -t 10 delivered field "$job" r2@flaky.test state
fx_check "after 3 or more attempts" test "$(field "$job" r1@flaky.test attempts)" -ge 3
fx_check_eq "each recipient received exactly once" "r1@flaky.test r2@flaky.test" \
    "$(fx_pysink_rcpts "$FX/flaky" | tr '\n' ' ' | sed 's/ $//')"

# ---- 2. max_queue_lifetime = 3s: a recipient that never gets through expires
fx_stop_pid "$QR"
conf "retry_schedule=1s" "max_queue_lifetime=3s"
job2=$(printf '%s\n' soft1@ok.test e@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_spawn qrunner2 "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
QR=$FX_LAST_PID
log=$FX/qrunner2.out
fx_check "expired after 3 s of retries" fx_wait_eq -t 10 expired field "$job2" soft1@ok.test state
fx_check "retried before it expired" test "$(field "$job2" soft1@ok.test attempts)" -ge 2
fx_check_eq "the other one delivered" delivered "$(field "$job2" e@ok.test state)"
fx_check "expired line in the log" grep -qE "$job2: to=<soft1@ok.test>, .*status=expired \(message has been in the queue too long" "$log"
fx_check "job done" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' job $job2 --json | grep -q '\"state\": *\"done\"'"
fx_stop_pid "$QR"

# ---- 3. flush: deferred recipients due now; a paused destination is retried as a whole
conf "retry_schedule=1h" "destination_concurrency=1" "max_recipients_per_transaction=1"
job3=$(printf '%s\n' d1@down.test d2@down.test d3@down.test d4@down.test |
       "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
log=$FX/mxlane.log
# The line a failed connection attempt writes (the deferred lines quote it in parentheses).
connects() { grep -cE "qrunner\[[0-9]+\]: connect to mx.down.test\[127.0.0.93\]:$P: " "$log"; }
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "4 transactions, one connection attempt: the rest fail with the paused destination" 1 "$(connects)"
fx_check_eq "all 4 deferred" "deferred deferred deferred deferred" \
    "$(recips "$job3" | "$FX_PYTHON" -c 'import json,sys; print(" ".join(r["state"] for r in json.load(sys.stdin)))')"
fx_check "the pause is logged" grep -q "destination mx:.*paused for 3600s" "$log"
timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "not due for an hour: no new attempt" 1 "$(connects)"
"$FX_CTL" -c "$FX/mxlane.conf" flush "$job3" >/dev/null
fx_check_eq "flush makes them due" 4 "$(recips "$job3" | "$FX_PYTHON" -c '
import json,sys,datetime
now=datetime.datetime.now(datetime.timezone.utc)
print(sum(1 for r in json.load(sys.stdin)
          if datetime.datetime.fromisoformat(r["next_attempt"].replace("Z","+00:00")) <= now))')"
timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "retried as a whole: one more connection attempt for all 4" 2 "$(connects)"
fx_check_eq "2 attempts each" "2 2 2 2" \
    "$(recips "$job3" | "$FX_PYTHON" -c 'import json,sys; print(" ".join(str(r["attempts"]) for r in json.load(sys.stdin)))')"
fx_done
