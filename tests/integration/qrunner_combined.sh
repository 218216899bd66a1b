#!/bin/bash
# qrunner_combined: delivery_mode = combined: direct first; temporary failures (refused connection, 4xx,
# DNS timeout) go on to the relay (a private Postfix) in the same pass, permanent ones bounce.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_combined
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

# ok.test's MX is a sink; refused.test's MX refuses connections (nothing listens there).
fx_dns_start \
  'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.81' \
  'mx-host=refused.test,mx.refused.test,10' 'host-record=mx.refused.test,127.0.0.82' \
  "server=/timeout.test/127.0.0.1#$FX_DEAD_PORT"
fx_pysink_start "$FX/direct" "127.0.0.81:$P"
fx_pysink_start "$FX/beyond" "127.0.0.84:$P"
# The relay: Postfix's reinjection port, which sends refused.test and timeout.test on to another sink.
FX_POSTFIX_TRANSPORT="refused.test smtp:[127.0.0.84]:$P
timeout.test smtp:[127.0.0.84]:$P
ok.test smtp:[127.0.0.84]:$P"
fx_postfix_start

fx_write_conf "$FX/mxlane.conf" delivery_mode=combined "smtp_port=$P" "dns_timeout=1s" "retry_schedule=1h" \
  "relay_host=[127.0.0.1]:$FX_PF_REINJECT_PORT" "notify_sender=none" "max_recipients_per_transaction=10"
printf 'From: news@sender.test\nSubject: combined\n\nbody\n' > "$FX/msg.txt"
job=$(printf '%s\n' a@ok.test hard1@ok.test soft1@ok.test x@refused.test y@refused.test \
        q@nxdomain.test t@timeout.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)

timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?

state() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$job" --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$1': print(r['state'], r['attempts'], r['host'].split('[')[0])"; }
fx_check_eq "direct works: delivered by the MX" "delivered 1 mx.ok.test" "$(state a@ok.test)"
fx_check_eq "refused connection: relayed in the same pass" "relayed 1 127.0.0.1" "$(state x@refused.test)"
fx_check_eq "its domain-mate too" "relayed 1 127.0.0.1" "$(state y@refused.test)"
fx_check_eq "451 at RCPT: relayed" "relayed 1 127.0.0.1" "$(state soft1@ok.test)"
fx_check_eq "DNS timeout: relayed" "relayed 1 127.0.0.1" "$(state t@timeout.test)"
fx_check_eq "550 5.1.1: bounced, not handed over" "bounced 1 mx.ok.test" "$(state hard1@ok.test)"
fx_check_eq "NXDOMAIN: bounced, not handed over" "bounced 1 " "$(state q@nxdomain.test)"

# The log says which path each recipient took: the direct failure, then the relay's acceptance.
log=$FX/mxlane.log
fx_check "direct failure names the hand-over" grep -qE \
    "$job: to=<x@refused.test>, relay=none, .*status=deferred \(connect to mx.refused.test\[127.0.0.82\]:$P: Connection refused; handing over to the relay \[127.0.0.1\]:$FX_PF_REINJECT_PORT \[class=network\]\)" "$log"
fx_check "then the relay took it" grep -qE \
    "$job: to=<x@refused.test>, relay=127.0.0.1\[127.0.0.1\]:$FX_PF_REINJECT_PORT, .*dsn=2.0.0, status=sent" "$log"
fx_check "the 451 was handed over too" grep -qE "to=<soft1@ok.test>, relay=mx.ok.test.*status=deferred .*handing over to the relay" "$log"
fx_check "a direct delivery line" grep -qE "to=<a@ok.test>, relay=mx.ok.test\[127.0.0.81\]:$P, .*status=sent" "$log"
fx_check_eq "no relay line for a bounce" 0 "$(grep -c "to=<hard1@ok.test>, relay=127.0.0.1" "$log")"

# Where the mail went: a straight to its MX; the refused and timed-out ones through Postfix to the far sink.
fx_check_eq "the MX got only a" "a@ok.test" "$(fx_pysink_rcpts "$FX/direct" | tr '\n' ' ' | sed 's/ $//')"
beyond() { fx_pysink_rcpts "$FX/beyond" | tr '\n' ' ' | sed 's/ $//'; }
# (soft1@ok.test stays in Postfix's queue: the far sink answers 451 to it too; Postfix owns it now)
fx_check "Postfix delivered the handed-over ones" fx_wait_eq -t 30 "t@timeout.test x@refused.test y@refused.test" beyond
fx_check "Postfix got them from mxlane on the reinjection port" grep -q "postfix/mxlane-reinject/smtpd.*client=" "$FX_PF_LOG"
fx_check_eq "nothing delivered twice" "" "$( (fx_pysink_rcpts "$FX/direct"; fx_pysink_rcpts "$FX/beyond") | sort | uniq -d)"

# A second run has nothing to do: relayed is final.
timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "second run sends nothing" 1 "$(fx_pysink_count "$FX/direct")"
fx_done
