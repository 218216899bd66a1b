#!/bin/bash
# milter_reports: what comes back after delivery, read by mxlane-milter on a private Postfix. A job is
# delivered with VERP senders (bounce_address) and List-Unsubscribe (unsubscribe_address); then, injected
# through Postfix: an RFC 3464 DSN to a recipient's VERP address bounces it (and suppresses a 5.1.1), a
# delayed DSN changes nothing, mail to its unsubscribe address suppresses it (unsubscribed), an ARF
# complaint whose reported message carries the VERP Return-Path suppresses it (complaint) and, over
# max_complaint_rate, holds the job with the reason; each is taken off Postfix's queue. A forged token, a
# DSN about another recipient and an unreadable report change nothing and Postfix delivers them onward.
. "$(dirname "$0")/../fixtures/lib.sh"
. "$(dirname "$0")/milter_mta.sh"
. "$(dirname "$0")/milter_reports_lib.sh"
fx_init milter_reports
fx_need "$FX_PYTHON"
fx_need_built "$FX_MILTER" "$FX_CTL" "$FX_QRUNNER"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
[ -x "$MKJOB" ] || fx_fatal "tests/tools/mkjob not built"

SINK_Q=$(fx_port 4)   # where the qrunner delivers the job
SINK_PF=$(fx_port 5)  # where Postfix sends what it keeps (its relay host)
fx_pysink_start "$FX/sinkq" "127.0.0.1:$SINK_Q"
fx_pysink_start "$FX/sinkpf" "127.0.0.1:$SINK_PF"
fx_write_conf "$FX/mxlane.conf" "delivery_mode = relay" "relay_host = [127.0.0.1]:$SINK_Q" \
    "retry_schedule = 1h" "bounce_address = bounces@shop.test" "unsubscribe_address = unsubscribe@shop.test" \
    "complaint_address = fbl@shop.test" "complaint_min_delivered = 1" "max_complaint_rate = 10%" \
    "event_log = $FX/events.jsonl" "event_webhook = http://127.0.0.1:$(fx_port 6)/events"

# ---- a job of five: four relayed (delivered to the relay host), soft1 deferred (the job stays active)
printf 'From: news@shop.test\nSubject: spring offers\n\nbody\n' > "$FX/msg.txt"
job=$(printf '%s\n' ann@a.test bob@b.test cy@c.test dee@d.test soft1@e.test |
    "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@shop.test --name spring)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "four delivered" 4 "$(fx_pysink_count "$FX/sinkq")"
T_ANN=$(token ann@a.test) T_BOB=$(token bob@b.test) T_CY=$(token cy@c.test) T_DEE=$(token dee@d.test)
fx_check "every copy had its VERP sender" test -n "$T_ANN" -a -n "$T_BOB" -a -n "$T_CY" -a -n "$T_DEE"

fx_milter_start "$FX/mxlane.conf"
FX_POSTFIX_MILTER=$(fx_postfix_milter_spec "$FX_MILTER_SOCKET")
FX_POSTFIX_RELAYHOST="[127.0.0.1]:$SINK_PF"
fx_postfix_start
P=$FX_PF_PORT

# ---- a DSN for ann (5.1.1): bounced after delivery, suppressed, and gone from Postfix
dsn "$FX/dsn_ann.eml" "bounces+$T_ANN@shop.test" ann@a.test failed 5.1.1 \
    "550 5.1.1 <ann@a.test>: Recipient address rejected: User unknown"
fx_check_eq "the DSN is accepted (250)" 250 "$(inject '' "bounces+$T_ANN@shop.test" "$FX/dsn_ann.eml")"
fx_check_eq "ann is bounced with the DSN's status" "bounced 5.1.1" "$(state ann@a.test)"
fx_check_eq "ann is suppressed (bounce, the job)" "bounce $job" "$(suppressed ann@a.test)"
fx_check "the milter logged it" grep -q "$job: rcpt=<ann@a.test>, report=dsn (rfc3464), dsn=5.1.1 (invalid-recipient): bounced after delivery, suppressed (bounce)" "$FX/milter.out"
fx_check "... and discarded it" grep -q "report recorded, action=discard" "$FX/milter.out"
fx_check "Postfix logged milter-discard" fx_wait_for grep -q 'milter-discard' "$FX_PF_LOG"

# ---- a delayed DSN for bob: nothing changes (it is read and discarded too)
dsn "$FX/dsn_bob_delay.eml" "bounces+$T_BOB@shop.test" bob@b.test delayed 4.4.1 \
    "connect to store.isp.test: Connection timed out"
fx_check_eq "the delayed DSN is accepted" 250 "$(inject '' "bounces+$T_BOB@shop.test" "$FX/dsn_bob_delay.eml")"
fx_check_eq "bob is still relayed" "relayed 2.0.0" "$(state bob@b.test)"
fx_check_eq "bob is not suppressed" "" "$(suppressed bob@b.test)"
fx_check "the milter says there is nothing to change" grep -q "$job: rcpt=<bob@b.test>, report=dsn (rfc3464), action=delayed: nothing to change" "$FX/milter.out"

# ---- a DSN about cy sent to bob's token: not about bob; left to Postfix, nothing changes
dsn "$FX/dsn_mismatch.eml" "bounces+$T_BOB@shop.test" cy@c.test failed 5.1.1 "550 5.1.1 no such user"
fx_check_eq "the mismatched DSN is accepted" 250 "$(inject '' "bounces+$T_BOB@shop.test" "$FX/dsn_mismatch.eml")"
fx_check_eq "bob is still relayed" "relayed 2.0.0" "$(state bob@b.test)"
fx_check_eq "cy is still relayed" "relayed 2.0.0" "$(state cy@c.test)"
fx_check "the milter says why" grep -q "names only other recipients" "$FX/milter.out"
fx_check "Postfix delivers it onward" fx_wait_eq 1 fx_pysink_count "$FX/sinkpf"

# ---- a forged token: nothing changes, Postfix delivers it onward
forged=$("$FX_PYTHON" -c "t='$T_BOB'; print(t[:5] + ('b' if t[5] != 'b' else 'c') + t[6:])")
dsn "$FX/dsn_forged.eml" "bounces+$forged@shop.test" bob@b.test failed 5.1.1 "550 5.1.1 no such user"
fx_check_eq "the forged DSN is accepted (never a 5xx)" 250 "$(inject '' "bounces+$forged@shop.test" "$FX/dsn_forged.eml")"
fx_check_eq "bob is still relayed" "relayed 2.0.0" "$(state bob@b.test)"
fx_check "the milter says the token does not verify" grep -q "token $forged does not verify" "$FX/milter.out"
fx_check "Postfix delivers it onward" fx_wait_eq 2 fx_pysink_count "$FX/sinkpf"
fx_check "... to the forged address" grep -q "bounces+$forged@shop.test" "$FX/sinkpf/accepted.jsonl"

# ---- an unreadable report to a good token: left to Postfix
printf 'From: someone@isp.test\nSubject: hello\n\nnot a bounce at all\n' > "$FX/plain.eml"
fx_check_eq "a plain message to a VERP address is accepted" 250 \
    "$(inject someone@isp.test "bounces+$T_BOB@shop.test" "$FX/plain.eml")"
fx_check "Postfix delivers it onward" fx_wait_eq 3 fx_pysink_count "$FX/sinkpf"
fx_check_eq "bob is still relayed" "relayed 2.0.0" "$(state bob@b.test)"

# ---- unsubscribe mail for cy, to the mailto address in its copy's List-Unsubscribe
mailto=$(grep -o "<mailto:unsubscribe+$T_CY@shop.test>" "$FX/sinkq/127.0.0.1.mbox" | head -n 1 | sed 's/^<mailto:\(.*\)>$/\1/')
fx_check_eq "cy's copy named its unsubscribe address" "unsubscribe+$T_CY@shop.test" "$mailto"
printf 'From: cy@c.test\nTo: %s\nSubject: unsubscribe\n\n' "$mailto" > "$FX/unsub.eml"
fx_check_eq "the unsubscribe mail is accepted" 250 "$(inject cy@c.test "$mailto" "$FX/unsub.eml")"
fx_check_eq "cy is suppressed (unsubscribed, the job)" "unsubscribed $job" "$(suppressed cy@c.test)"
fx_check_eq "cy's delivery stands (relayed)" "relayed 2.0.0" "$(state cy@c.test)"

# ---- an ARF complaint about dee, the recipient redacted, the VERP Return-Path kept
arf "$FX/arf.eml" "$T_DEE"
fx_check_eq "the complaint is accepted" 250 "$(inject feedback@fbl.isp.test fbl@shop.test "$FX/arf.eml")"
fx_check_eq "dee is suppressed (complaint, the job)" "complaint $job" "$(suppressed dee@d.test)"
jobjson=$(ctl job "$job" --json)
fx_check "the job counts one complaint" "$FX_PYTHON" -c "
import json,sys; d=json.loads(sys.argv[1]); assert d['complaints'] == 1, d" "$jobjson"
# delivered (relayed) now: bob, cy, dee (ann bounced): 1 of 3 is over 10%
fx_check "the job is held with the reason" "$FX_PYTHON" -c "
import json,sys; d=json.loads(sys.argv[1])
assert d['state'] == 'held', d
assert d['hold_reason'] == 'complaint rate 33.33% over max_complaint_rate 10.00% (1 complaints, 3 delivered)', d" "$jobjson"
fx_check_eq "its deferred recipient is held" "held 4.3.0" "$(state soft1@e.test)"

# ---- each change is an event, in event_log and in event_webhook's spool (the milter learnt them)
for f in "$FX/events.jsonl" "$FX/queue/webhook.spool"; do
    fx_check_eq "$(basename "$f"): the bounce after delivery" "ann@a.test" "$(events "$f" bounced)"
    fx_check_eq "$(basename "$f"): the unsubscribe" "cy@c.test" "$(events "$f" unsubscribed)"
    fx_check_eq "$(basename "$f"): the complaint" "dee@d.test" "$(events "$f" complaint)"
done
fx_check "the bounce event has the DSN's status, class, diagnostic and the job" "$FX_PYTHON" - "$FX/events.jsonl" "$job" <<'PY'
import json, sys
e = [json.loads(l) for l in open(sys.argv[1]) if '"bounced"' in l][0]
assert (e["job"], e["job_name"], e["dsn"], e["class"], e["host"]) == (sys.argv[2], "spring", "5.1.1", "invalid-recipient", "store.isp.test"), e
assert e["reply"].startswith("550 5.1.1 <ann@a.test>"), e
PY

# ---- none of the recorded reports is left in Postfix or went onward
fx_check "Postfix's queue is empty" fx_postfix_wait_empty 10
fx_check_eq "only the three unrecognised messages went onward" 3 "$(fx_pysink_count "$FX/sinkpf")"
fx_check "no recognised report went onward" bash -c \
    "! grep -Eq 'bounces\\+$T_ANN|unsubscribe\\+|fbl@shop.test' '$FX/sinkpf/accepted.jsonl'"
fx_check_eq "Postfix discarded four (ann's DSN, the delayed one, the unsubscribe, the complaint)" 4 \
    "$(grep -c 'milter-discard' "$FX_PF_LOG")"

# ---- a store that cannot take the report: 4xx (the sender keeps it and retries), never a 5xx
fx_stop_pid "$FX_MILTER_PID"
mkdir -p "$FX/broken"
printf 'this is not a Berkeley DB file\n' > "$FX/broken/jobs.db"
printf 'neither is this\n' > "$FX/broken/meta.db"
fx_write_conf "$FX/broken.conf" "queue_directory = $FX/broken" "bounce_address = bounces@shop.test"
fx_milter_start "$FX/broken.conf"
dsn "$FX/dsn_dee.eml" "bounces+$T_DEE@shop.test" dee@d.test failed 5.1.1 "550 5.1.1 no such user"
fx_check_eq "a report the store cannot take gets 451" 451 "$(inject '' "bounces+$T_DEE@shop.test" "$FX/dsn_dee.eml")"
fx_check "... saying why" grep -q "tempfail 451 4.3.0 mxlane: " "$FX/milter.out"
fx_check "Postfix kept nothing" fx_postfix_wait_empty 10
fx_check_eq "ordinary mail still flows" 250 "$(inject someone@isp.test friend@e.test "$FX/plain.eml")"

fx_done
