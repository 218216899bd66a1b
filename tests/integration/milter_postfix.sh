#!/bin/bash
# milter_postfix: a private Postfix with mxlane-milter attached: bulk jobs land in the store and
# leave Postfix's queue (discard) or wait in its hold queue (hold); ordinary mail flows untouched.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
fx_init milter_postfix
fx_need swaks "$FX_PYTHON"
[ -x "$FX_MILTER" ] && [ -x "$FX_CTL" ] || fx_fatal "mxlane-milter or mxlanectl not built"

SINK=$(fx_port 4)
fx_pysink_start "$FX/sink" "127.0.0.1:$SINK"
fx_write_conf "$FX/mxlane.conf" "bulk_min_recipients = 50"
fx_milter_start "$FX/mxlane.conf"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
FX_POSTFIX_RELAYHOST="[127.0.0.1]:$SINK"
fx_postfix_start
P=$FX_PF_PORT

# ---- discard: the bulk job is ours, Postfix keeps nothing
fx_check "bulk job accepted by Postfix" mta_send "$P" "$FX/bulk1" news@corp.test \
    ann@a.test,bob@b.test,cy@c.test --header "X-Mxlane-Job: autumn"
fx_check_eq "client got 250" 250 "$(mta_reply "$FX/bulk1")"
fx_check "second message of the job" mta_send "$P" "$FX/bulk2" news@corp.test dee@d.test \
    --header "X-Mxlane-Job: autumn"
fx_check "ordinary mail accepted" mta_send "$P" "$FX/plain" clerk@corp.test friend@e.test \
    --header "X-Note: keep me"
fx_check "ordinary mail reaches the sink" fx_wait_eq 1 fx_pysink_count "$FX/sink"
fx_check_eq "the sink got only the ordinary message" "friend@e.test" "$(fx_pysink_rcpts "$FX/sink")"
fx_check "ordinary mail untouched (its own header kept)" grep -q '^X-Note: keep me' "$FX/sink/127.0.0.1.mbox"
fx_check "Postfix's queue is empty" fx_postfix_wait_empty 10
fx_check "Postfix logged milter-discard" grep -q 'milter-discard' "$FX_PF_LOG"
fx_check "one job autumn" jobs_check "$FX/mxlane.conf" 'len(named("autumn")) == 1'
fx_check_eq "every recipient queued in mxlane" "ann@a.test bob@b.test cy@c.test dee@d.test" \
    "$(job_addresses "$FX/mxlane.conf" autumn queued)"
fx_check "the intake log has Postfix's queue id" \
    grep -Eq 'message=[0-9]+, queue_id=[0-9A-Za-z]+, from=<news@corp.test>, nrcpt=3, .*job="autumn", action=discard' "$FX/milter.out"
fx_check "no bulk mail reached the sink" bash -c "! grep -q 'ann@a.test' '$FX/sink/accepted.jsonl'"

# ---- the milter dies mid-run: clients see 4xx, nothing accepted is lost
kill_midrun "$P" "$FX/mxlane.conf" "$FX_MILTER_PID" 15
fx_check "Postfix queued nothing while the milter was down" fx_postfix_wait_empty 5

# ---- hold: the original waits in Postfix's hold queue
fx_write_conf "$FX/hold.conf" "intercept_action = hold"
fx_milter_start "$FX/hold.conf"
fx_check "held bulk job accepted" mta_send "$P" "$FX/held" news@corp.test gil@g.test \
    --header "X-Mxlane-Job: winter"
fx_check_eq "Postfix holds it" 1 "$(fx_postfix_hold_count)"
fx_check_eq "held job stored" "gil@g.test" "$(job_addresses "$FX/hold.conf" winter queued)"
fx_check "log says action=hold" grep -q 'job="winter", action=hold' "$FX/milter.out"
fx_check_eq "the sink still has only the ordinary message" 1 "$(fx_pysink_count "$FX/sink")"
fx_done
