#!/bin/bash
# qrunner_providers: two domains whose MX hosts share a provider's suffix (a providers file line) are
# suspended together by the shipped reply_rules' "421 4.7.28" rule; the suspension is kept in the store,
# so a new qrunner run still honours it; mxlanectl destinations shows it (from the store, and from a
# running qrunner's snapshot); mxlanectl resume ends it in the running qrunner within seconds; pause
# by hand holds a destination of its own; the other destinations are never held up.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_providers
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=one.test,mx1.bigmail.test,10' 'host-record=mx1.bigmail.test,127.0.0.141' \
  'mx-host=two.test,mx2.bigmail.test,10' 'host-record=mx2.bigmail.test,127.0.0.142' \
  'mx-host=solo.test,mx.solo.test,10' 'host-record=mx.solo.test,127.0.0.143'
fx_pysink_start "$FX/sink" "127.0.0.141:$P" "127.0.0.142:$P" "127.0.0.143:$P"
printf '# test providers\nmx:.bigmail.test  destination_concurrency=2\n' > "$FX/providers"
fx_write_conf "$FX/mxlane.conf" "smtp_port=$P" "providers=$FX/providers" \
    "reply_rules=$MXLANE_SRCDIR/conf/reply_rules" "retry_schedule=1h" "notify_sender=none"
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
states() { ctl recipients "$1" --json | "$FX_PYTHON" -c "
import json,sys
print(' '.join(r['address'] + '=' + r['state'] for r in sorted(json.load(sys.stdin), key=lambda r: r['address'])))"; }
# destinations --json as "name paused|running reason-has-4.7.28" lines, for the names asked
dests() { ctl destinations --json | "$FX_PYTHON" -c "
import json,sys
rows = {r['name']: r for r in json.load(sys.stdin)}
for n in sys.argv[1:]:
    r = rows.get(n)
    print(n, 'absent' if r is None else ('paused' if r['paused_until'] else 'running'),
          '4.7.28' if r and '4.7.28' in (r['reason'] or '') else '-')" "$@"; }
printf 'From: news@sender.test\nSubject: providers\n\nbody\n' > "$FX/msg.txt"

# ---- 1. one.test's MX says 421 4.7.28: the provider is suspended for an hour (shipped rule)
j1=$(printf '%s\n' unusual1@one.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j1)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "the 421 defers its recipient" "unusual1@one.test=deferred" "$(states "$j1")"
fx_check "the log names the provider, the reply and the shipped rule" \
    grep -qE "provider mx:.bigmail.test \(by destination one.test\) backing off after \"421 4.7.28 .*\" \(.*conf/reply_rules:[0-9]+\): .*paused for 3600s" \
    "$FX/mxlane.log"
fx_check_eq "destinations shows the provider paused (from the store, no qrunner running)" \
    "mx:.bigmail.test paused 4.7.28" "$(dests mx:.bigmail.test)"

# ---- 2. a new run: two.test (same provider) waits; solo.test goes
j2=$(printf '%s\n' ok1@two.test ok2@two.test ok3@solo.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j2)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0 again" 0 $?
fx_check_eq "two.test waits for its provider; solo.test delivered" \
    "ok1@two.test=queued ok2@two.test=queued ok3@solo.test=delivered" "$(states "$j2")"
fx_check "nothing reached two.test's MX" test ! -s "$FX/sink/127.0.0.142.mbox"

# ---- 3. a running qrunner: its snapshot shows the provider and its destination; resume ends the
# suspension within seconds, and two.test's mail goes
fx_spawn qrunner "$FX_QRUNNER" -c "$FX/mxlane.conf" -f
qr=$FX_LAST_PID
fx_check "the running qrunner writes its snapshot" fx_wait_for -t 10 test -s "$FX/queue/destinations.json"
fx_check "the provider is listed as paused by the running qrunner" \
    fx_wait_for -t 10 bash -c "'$FX_CTL' -c '$FX/mxlane.conf' destinations | grep -E '^mx:.bigmail.test ' | grep -q '4.7.28'"
ctl resume mx:.bigmail.test
fx_check_eq "resume exits 0" 0 $?
fx_check "two.test's mail goes at once" fx_wait_for -t 15 bash -c \
    "[ \"\$('$FX_CTL' -c '$FX/mxlane.conf' recipients $j2 --json | grep -o '\"delivered\"' | wc -l)\" -eq 3 ]"
fx_check "destinations: the provider runs again" fx_wait_for -t 5 fx__prints "mx:.bigmail.test running -" dests mx:.bigmail.test
fx_check "the snapshot lists two.test under its provider" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' destinations --json |
    '$FX_PYTHON' -c '
import json,sys
r = {d[\"name\"]: d for d in json.load(sys.stdin)}[\"two.test\"]
assert r[\"mx\"] == \"mx2.bigmail.test\" and r[\"provider\"] == \"mx:.bigmail.test\", r
assert r[\"last_reply\"].startswith(\"250\"), r'"

# ---- 4. pause a destination by hand in the running qrunner: its new mail waits; resume sends it
ctl pause solo.test --for 1h
fx_check_eq "pause exits 0" 0 $?
sleep 2
j3=$(printf '%s\n' ok4@solo.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --name j3)
fx_check "the qrunner holds solo.test's new mail for the pause" \
    fx_wait_for -t 10 grep -q "destination solo.test suspended until .*: paused by mxlanectl" "$FX/qrunner.out"
sleep 1
fx_check_eq "solo.test's new mail waits" "ok4@solo.test=queued" "$(states "$j3")"
ctl resume solo.test
fx_check "the qrunner sees the resume" fx_wait_for -t 10 grep -q "destination solo.test resumed" "$FX/qrunner.out"
fx_check "after resume it is delivered" fx_wait_for -t 15 bash -c \
    "'$FX_CTL' -c '$FX/mxlane.conf' recipients $j3 | grep -q delivered"
fx_stop_pid "$qr"
fx_check "a stopped qrunner leaves no snapshot" test ! -e "$FX/queue/destinations.json"
fx_done
