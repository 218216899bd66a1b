#!/bin/bash
# milter_sendmail: a private Sendmail with mxlane-milter attached (INPUT_MAIL_FILTER): bulk jobs land
# in the store and leave Sendmail's queue (discard) or are quarantined (hold); ordinary mail flows.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
fx_init milter_sendmail
fx_need swaks "$FX_PYTHON"
[ -x "$FX_MILTER" ] && [ -x "$FX_CTL" ] || fx_fatal "mxlane-milter or mxlanectl not built"

SINK=$(fx_port 4)
fx_pysink_start "$FX/sink" "127.0.0.1:$SINK"
fx_write_conf "$FX/mxlane.conf"
fx_milter_start "$FX/mxlane.conf"
FX_SENDMAIL_RELAY="[127.0.0.1]:$SINK"
fx_sendmail_start "$FX_MILTER_SOCKET"
P=$FX_SM_PORT

sm_queue_empty() { [ "$(fx_sendmail_queue_count)" -eq 0 ]; }

# ---- discard
fx_check "bulk job accepted by Sendmail" mta_send "$P" "$FX/bulk1" news@corp.test \
    ann@a.test,bob@b.test,cy@c.test --header "X-Mxlane-Job: autumn"
fx_check_eq "client got 250" 250 "$(mta_reply "$FX/bulk1")"
fx_check "ordinary mail accepted" mta_send "$P" "$FX/plain" clerk@corp.test friend@e.test \
    --header "X-Note: keep me"
fx_check "ordinary mail reaches the sink" fx_wait_eq -t 20 1 fx_pysink_count "$FX/sink"
fx_check_eq "the sink got only the ordinary message" "friend@e.test" "$(fx_pysink_rcpts "$FX/sink")"
fx_check "ordinary mail untouched (its own header kept)" grep -q '^X-Note: keep me' "$FX/sink/127.0.0.1.mbox"
fx_check "Sendmail's queue is empty" fx_wait_for -t 10 sm_queue_empty
fx_check_eq "every recipient queued in mxlane" "ann@a.test bob@b.test cy@c.test" \
    "$(job_addresses "$FX/mxlane.conf" autumn queued)"
fx_check "the intake log has Sendmail's queue id" \
    grep -Eq 'message=[0-9]+, queue_id=[0-9A-Za-z]+, from=<news@corp.test>, nrcpt=3, .*job="autumn", action=discard' "$FX/milter.out"

# ---- the milter dies mid-run: F=T makes Sendmail answer 4xx
kill_midrun "$P" "$FX/mxlane.conf" "$FX_MILTER_PID" 12
fx_check_eq "Sendmail queued nothing while the milter was down" 0 "$(fx_sendmail_queue_count)"

# ---- hold: Sendmail quarantines the original
fx_write_conf "$FX/hold.conf" "intercept_action = hold"
fx_milter_start "$FX/hold.conf"
fx_check "held bulk job accepted" mta_send "$P" "$FX/held" news@corp.test gil@g.test \
    --header "X-Mxlane-Job: winter"
fx_check_eq "Sendmail keeps it quarantined" 1 "$(fx_sendmail_queue_count)"
fx_check "quarantine reason names the job" bash -c "grep -rqs 'mxlane: job J' '$FX_SM_DIR/mqueue'"
fx_check_eq "held job stored" "gil@g.test" "$(job_addresses "$FX/hold.conf" winter queued)"
fx_check_eq "the sink still has only the ordinary message" 1 "$(fx_pysink_count "$FX/sink")"
fx_done
