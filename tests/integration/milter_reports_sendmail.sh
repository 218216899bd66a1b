#!/bin/bash
# milter_reports_sendmail: the loop after delivery on a private Sendmail: a job goes out with VERP senders and
# List-Unsubscribe; then, through Sendmail, a DSN to a recipient's VERP address bounces and suppresses it,
# mail to its unsubscribe address and an ARF complaint suppress theirs; each is an event in event_log and
# is taken off Sendmail's queue, while a forged token changes nothing and Sendmail delivers it onward.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
. "$(dirname "$0")/milter_reports_lib.sh"
fx_init milter_reports_sendmail
fx_need "$FX_PYTHON"
fx_need_built "$FX_MILTER" "$FX_CTL" "$FX_QRUNNER"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
[ -x "$MKJOB" ] || fx_fatal "tests/tools/mkjob not built"

SINK_Q=$(fx_port 4)   # where the qrunner delivers the job
SINK_SM=$(fx_port 5)  # where Sendmail sends what it keeps (its smart host)
fx_pysink_start "$FX/sinkq" "127.0.0.1:$SINK_Q"
fx_pysink_start "$FX/sinksm" "127.0.0.1:$SINK_SM"
fx_write_conf "$FX/mxlane.conf" "delivery_mode = relay" "relay_host = [127.0.0.1]:$SINK_Q" \
    "bounce_address = bounces@shop.test" "unsubscribe_address = unsubscribe@shop.test" \
    "complaint_address = fbl@shop.test" "event_log = $FX/events.jsonl"

printf 'From: news@shop.test\nSubject: spring offers\n\nbody\n' > "$FX/msg.txt"
job=$(printf '%s\n' ann@a.test cy@c.test dee@d.test |
    "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@shop.test --name spring)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "three relayed" 3 "$(fx_pysink_count "$FX/sinkq")"
T_ANN=$(token ann@a.test) T_CY=$(token cy@c.test) T_DEE=$(token dee@d.test)
fx_check "every copy had its VERP sender" test -n "$T_ANN" -a -n "$T_CY" -a -n "$T_DEE"

fx_milter_start "$FX/mxlane.conf"
FX_SENDMAIL_RELAY="[127.0.0.1]:$SINK_SM"
fx_sendmail_start "$FX_MILTER_SOCKET"
P=$FX_SM_PORT

dsn "$FX/dsn_ann.eml" "bounces+$T_ANN@shop.test" ann@a.test failed 5.1.1 "550 5.1.1 <ann@a.test>: user unknown"
fx_check_eq "Sendmail accepts the DSN" 250 "$(inject '' "bounces+$T_ANN@shop.test" "$FX/dsn_ann.eml")"
fx_check_eq "ann is bounced with the DSN's status" "bounced 5.1.1" "$(state ann@a.test)"
fx_check_eq "ann is suppressed (bounce, the job)" "bounce $job" "$(suppressed ann@a.test)"

printf 'From: cy@c.test\nTo: unsubscribe+%s@shop.test\nSubject: unsubscribe\n\n' "$T_CY" > "$FX/unsub.eml"
fx_check_eq "Sendmail accepts the unsubscribe mail" 250 "$(inject cy@c.test "unsubscribe+$T_CY@shop.test" "$FX/unsub.eml")"
fx_check_eq "cy is suppressed (unsubscribed, the job)" "unsubscribed $job" "$(suppressed cy@c.test)"

arf "$FX/arf.eml" "$T_DEE"
fx_check_eq "Sendmail accepts the complaint" 250 "$(inject feedback@fbl.isp.test fbl@shop.test "$FX/arf.eml")"
fx_check_eq "dee is suppressed (complaint, the job)" "complaint $job" "$(suppressed dee@d.test)"

forged=$("$FX_PYTHON" -c "t='$T_CY'; print(t[:5] + ('b' if t[5] != 'b' else 'c') + t[6:])")
fx_check_eq "Sendmail accepts mail to a forged token" 250 \
    "$(inject '' "unsubscribe+$forged@shop.test" "$FX/unsub.eml")"
fx_check "the milter says the token does not verify" grep -q "token $forged does not verify" "$FX/milter.out"
fx_check "Sendmail delivers the forged one onward" fx_wait_eq -t 20 1 fx_pysink_count "$FX/sinksm"
fx_check "... and nothing else" grep -q "unsubscribe+$forged@shop.test" "$FX/sinksm/accepted.jsonl"
sm_queue_empty() { [ "$(fx_sendmail_queue_count)" -eq 0 ]; }
fx_check "Sendmail's queue is empty" fx_wait_for -t 10 sm_queue_empty
fx_check_eq "the milter discarded three reports" 3 "$(grep -c 'report recorded, action=discard' "$FX/milter.out")"

fx_check_eq "event_log: the bounce after delivery" "ann@a.test" "$(events "$FX/events.jsonl" bounced)"
fx_check_eq "event_log: the unsubscribe" "cy@c.test" "$(events "$FX/events.jsonl" unsubscribed)"
fx_check_eq "event_log: the complaint" "dee@d.test" "$(events "$FX/events.jsonl" complaint)"
fx_check "mxlanectl job counts what the job put on the suppression list" "$FX_PYTHON" -c "
import json,sys; d=json.loads(sys.argv[1])
assert d['suppressions'] == {'bounce': 1, 'complaint': 1, 'manual': 0, 'unsubscribed': 1}, d" "$(ctl job "$job" --json)"

fx_done
