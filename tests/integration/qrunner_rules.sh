#!/bin/bash
# qrunner_rules: reply_rules decide what a reply does (a 4xx bounced or a destination suspended for the
# rule's time, named in the log); auth_failure_hold holds a job after that many SPF/DKIM/DMARC refusals,
# with the reason in mxlanectl job, and suppresses nobody; a bad rules file stops the start with FILE:LINE.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_rules
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=rules.test,mx.rules.test,10' 'host-record=mx.rules.test,127.0.0.121' \
  'mx-host=full.test,mx.full.test,10' 'host-record=mx.full.test,127.0.0.122' \
  'mx-host=auth.test,mx.auth.test,10' 'host-record=mx.auth.test,127.0.0.123'
fx_pysink_start "$FX/sink" "127.0.0.121:$P" "127.0.0.122:$P" "127.0.0.123:$P"
cat > "$FX/rules" <<'RULES'
# test rules
/^451 4\.3\.0 /         recipient    bounce        # pysink's soft*: bounced at once here
/4\.2\.2 .*over quota/  destination  suspend 1h    # pysink's full*: the whole destination waits
/^450 4\.2\.1 /         recipient    defer
RULES
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
rcpts() { ctl recipients "$1" --json | "$FX_PYTHON" -c "
import json,sys
for r in sorted(json.load(sys.stdin), key=lambda r: r['address']): print(r['address'], r['state'], r['class'])"; }
printf 'From: news@sender.test\nSubject: rules\n\nbody\n' > "$FX/msg.txt"

# ---- 1. a bad rules file: the start stops with FILE:LINE
printf '/ok/ recipient defer\n/(unclosed/ recipient defer\n' > "$FX/bad.rules"
fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "reply_rules=$FX/bad.rules"
out=$(timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once 2>&1)
fx_check_eq "a bad regular expression: exit 1" 1 $?
fx_check "... naming the file and line" grep -q "$FX/bad.rules:2: bad regular expression" <<<"$out"

# ---- 2. rules at work: a recipient rule bounces a 4xx; a destination rule suspends full.test for an hour
fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "reply_rules=$FX/rules" "retry_schedule=1h" "notify_sender=none" \
    "max_recipients_per_transaction=1" "destination_concurrency=1" "auth_failure_hold=2"
j1=$(printf '%s\n' soft1@rules.test rated1@rules.test ok1@rules.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 --name j1)
j2=$(printf '%s\n' full1@full.test ok2@full.test ok3@full.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 --name j2)
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
settled() { [ "$(rcpts "$j1" | grep -c 'queued')" -eq 0 ] && grep -q 'backing off after' "$FX/qrunner.out"; }
fx_check "the first recipients are tried" fx_wait_for -t 30 settled
sleep 2
fx_check_eq "451 4.3.0 bounced by its rule; 450 4.2.1 deferred by its rule; ok delivered" \
    "$(printf '%s\n' 'ok1@rules.test delivered ' 'rated1@rules.test deferred rate-limit' 'soft1@rules.test bounced other')" \
    "$(rcpts "$j1")"
fx_check "the destination rule is named in the log with its pause" \
    grep -qE "destination full.test \(mx:mx.full.test\) backing off after \"452 4.2.2 .*over quota.*\" \($FX/rules:3\): concurrency stays at 1, paused for 3600s" \
    "$FX/qrunner.out"
fx_check_eq "full.test waits: its other recipients are not tried" 2 "$(rcpts "$j2" | grep -c ' queued')"
fx_stop_pid "$qr"

# ---- 3. auth_failure_hold = 2: two DMARC refusals hold the job, with the reason, at once (one connection
# carries the job's transactions one after the other); nobody is suppressed
j3=$(printf '%s\n' dmarc1@auth.test dmarc2@auth.test dmarc3@auth.test ok4@auth.test ok5@auth.test |
     "$MKJOB" "$FX/queue" "$FX/msg.txt" --per-message 1 --name j3)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check "the job is held with the reason" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' job $j3 --json | '$FX_PYTHON' -c '
import json,sys
j = json.load(sys.stdin)
assert j[\"state\"] == \"held\", j[\"state\"]
assert \"2 delivery attempts failed the receivers\\x27 sender authentication\" in j[\"hold_reason\"], j[\"hold_reason\"]'"
fx_check "two bounced (auth), the rest held, none delivered after the hold" bash -c "
    rcpts() { '$FX_CTL' -c '$FX/mxlane.conf' recipients $j3 --json; }
    rcpts | '$FX_PYTHON' -c '
import json,sys
st = sorted((r[\"state\"], r[\"class\"]) for r in json.load(sys.stdin))
assert st[:2] == [(\"bounced\", \"auth\"), (\"bounced\", \"auth\")] and all(s == \"held\" for s, c in st[2:]), st'"
fx_check "the log says why" grep -q "$j3: held: 2 delivery attempts failed the receivers' sender authentication" "$FX/mxlane.log"
fx_check "nobody suppressed for it" bash -c "! '$FX_CTL' -c '$FX/mxlane.conf' suppress list | grep -q dmarc"
fx_done
