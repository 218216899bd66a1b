#!/bin/bash
# loop_postfix: a recipient domain whose MX is this host's own Postfix (with mxlane-milter on it) does not
# make a mail loop: the greeting with our own name bounces it (5.4.6); under another name the milter sees
# this host's mxlane Received: line and leaves the message to Postfix. No second job either way.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init loop_postfix
fx_need_built "$FX_QRUNNER" "$FX_CTL" "$FX_MILTER"
fx_need swaks "$FX_PYTHON"

# loop.test's MX is 127.0.0.1: the private Postfix's main listener, where the milter captures bulk mail.
fx_dns_start 'mx-host=loop.test,mx.loop.test,10' 'host-record=mx.loop.test,127.0.0.1'
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "unix:$FX/milter.sock")
# What Postfix accepts for loop.test stays in its queue (nothing listens at its next hop).
FX_POSTFIX_TRANSPORT="loop.test smtp:[127.0.0.1]:$FX_DEAD_PORT"
fx_postfix_start
# All mail from news@sender.test is bulk (bulk_senders): mxlane's own delivery of it would be too.
conf() {
    fx_write_conf "$FX/mxlane.conf" "smtp_port=$FX_PF_PORT" "notify_sender=none" "retry_schedule=1h" \
        "bulk_senders=news@sender.test" \
        "milter_socket=unix:$FX/milter.sock" "$@"
}
njobs() { "$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
state() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$1" --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin): print(r['address'], r['state'], r['dsn'])"; }
# A bulk job from a local client through Postfix: captured by the milter.
submit() {
    timeout 30 swaks --server 127.0.0.1 --port "$FX_PF_PORT" --from news@sender.test --to "$1" \
        --header "X-Mxlane-Job: $2" --header "Subject: $2" --body "looping body" > "$FX/swaks.$2" 2>&1
}
job_named() { "$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c "
import json,sys
print(' '.join(j['id'] for j in json.load(sys.stdin) if j['name'] == '$1'))"; }

# ---- 1. myhostname is Postfix's own name: the MX greets with it, the mail loops back to us.
conf "myhostname=mta.pftest.test"
fx_milter_start "$FX/mxlane.conf"
submit u@loop.test same-name
fx_check_eq "captured from the client: one job" 1 "$(njobs)"
j1=$(job_named same-name)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "the MX is ourselves: bounced 5.4.6" "u@loop.test bounced 5.4.6" "$(state "$j1")"
fx_check "the log says it loops" grep -q 'to=<u@loop.test>.*status=bounced (mail for loop.test loops back to myself \[class=network\])' \
    "$FX/mxlane.log"
fx_check_eq "nothing captured again: still one job" 1 "$(njobs)"
fx_stop_pid "$FX_MILTER_PID"

# ---- 2. Another myhostname (the greeting does not give us away): Postfix takes the message, the milter
# sees this host's mxlane Received: line and leaves it to Postfix; the job is done, no new one starts.
conf "myhostname=mxlane.other-name.test"
fx_milter_start "$FX/mxlane.conf"
before=$(fx_postfix_queue_count)
submit v@loop.test other-name
j2=$(job_named other-name)
fx_check_eq "captured from the client: a second job" 2 "$(njobs)"
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "Postfix accepted it: delivered" "v@loop.test delivered 2.0.0" "$(state "$j2")"
fx_check "the milter saw its own host's trace and returned it to Postfix" \
    grep -q "sent by this host's mxlane already (its Received: line), returned to the MTA" "$FX/milter.out"
fx_check_eq "not captured again: still two jobs" 2 "$(njobs)"
fx_check_eq "the message waits in Postfix's queue, as ordinary mail" $((before + 1)) "$(fx_postfix_queue_count)"
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "a second run has nothing to send: still two jobs" 2 "$(njobs)"
fx_done
