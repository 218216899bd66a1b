#!/bin/bash
# qrunner_notify: notify_sender = summary (one report per finished job, text + CSV) and each (an RFC 3464
# DSN per bounced or expired recipient), from MAILER-DAEMON with a null sender, through the relay (Postfix).
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_notify
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start 'mx-host=ok.test,mx.ok.test,10' 'host-record=mx.ok.test,127.0.0.102'
fx_pysink_start "$FX/mx" "127.0.0.102:$P"
fx_pysink_start "$FX/sender" "127.0.0.101:$P"
# The relay: Postfix, which routes the sender's domain to the sender's sink.
FX_POSTFIX_TRANSPORT="sender.test smtp:[127.0.0.101]:$P"
fx_postfix_start

conf() {
    fx_write_conf "$FX/mxlane.conf" delivery_mode=direct "smtp_port=$P" "retry_schedule=1h" \
        "relay_host=[127.0.0.1]:$FX_PF_REINJECT_PORT" "myhostname=mta.mxlane.test" "$@"
}
printf 'From: news@sender.test\nSubject: November news\nMessage-ID: <nov@sender.test>\n\nbody\n' > "$FX/msg.txt"
njobs() { "$FX_CTL" -c "$FX/mxlane.conf" jobs --json | "$FX_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# The messages the sender's sink got, as files: one per message, the sink's own headers left out.
split_sender_mail() {
    "$FX_PYTHON" - "$FX/sender/127.0.0.101.mbox" "$FX/got" <<'EOF'
import mailbox, os, sys
os.makedirs(sys.argv[2], exist_ok=True)
for i, m in enumerate(mailbox.mbox(sys.argv[1])):
    with open(os.path.join(sys.argv[2], '%d.eml' % i), 'wb') as f:
        f.write(m.as_bytes())
print(i + 1 if 'i' in dir() else 0)
EOF
}

# ---- 1. summary: the job finishes in this run; its report goes out in the same run, through the relay
conf "notify_sender=summary"
job=$(printf '%s\n' a@ok.test b@ok.test hard1@ok.test hard2@ok.test q@nxdomain.test |
      "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check "the summary arrives at the sender's sink" fx_wait_eq -t 30 1 fx_pysink_count "$FX/sender"
fx_check "with a null envelope sender, to the job's sender" "$FX_PYTHON" -c "
import json
r=[json.loads(l) for l in open('$FX/sender/accepted.jsonl')]
assert r[0]['from'] in ('', '<>') and r[0]['rcpt']==['news@sender.test'], r"
fx_check "Postfix took it from mxlane with MAIL FROM:<>" grep -q "from=<>" "$FX_PF_LOG"
split_sender_mail >/dev/null
fx_check "summary: multipart/mixed, counts in the text, failures in a CSV attachment" "$FX_PYTHON" - "$FX/got/0.eml" "$job" <<'EOF'
import csv, email, io, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
job = sys.argv[2]
assert m['From'] == 'Mail Delivery System <MAILER-DAEMON@mta.mxlane.test>', m['From']
assert m['To'].addresses[0].addr_spec == 'news@sender.test', m['To']
assert job in m['Subject'] and '2 of 5 delivered' in m['Subject'], m['Subject']
assert m['Auto-Submitted'] == 'auto-replied'
assert m.get_content_type() == 'multipart/mixed', m.get_content_type()
parts = list(m.iter_parts())
assert [p.get_content_type() for p in parts] == ['text/plain', 'text/csv'], parts
text = parts[0].get_content()
assert 'recipients: 5' in text and 'delivered:  2' in text and 'bounced:    3' in text, text
assert '<hard1@ok.test>: bounced' in text, text
assert parts[1].get_filename() == job + '-failed.csv'
rows = list(csv.DictReader(io.StringIO(parts[1].get_content())))
assert sorted(r['address'] for r in rows) == ['hard1@ok.test', 'hard2@ok.test', 'q@nxdomain.test'], rows
h = [r for r in rows if r['address'] == 'hard1@ok.test'][0]
assert h['state'] == 'bounced' and h['dsn'] == '5.1.1' and h['reply'].startswith('550 5.1.1') and h['attempts'] == '1', h
EOF
fx_check "the summary is logged" grep -q "$job: sender notification: summary to <news@sender.test>" "$FX/mxlane.log"
fx_check_eq "one notification job beside the job, and nothing about it" 2 "$(njobs)"
timeout 30 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
sleep 1
fx_check_eq "once per job: another run sends nothing" 1 "$(fx_pysink_count "$FX/sender")"

# ---- 2. each: an RFC 3464 DSN per bounced or expired recipient; none for a null-sender message
conf "notify_sender=each" "max_queue_lifetime=1s"
job2=$(printf '%s\n' c@ok.test hard3@ok.test soft1@ok.test |
       "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
job3=$(printf '%s\n' hard4@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from "")
sleep 1.2   # soft1's first failure comes after its lifetime: it expires instead of waiting
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check "two DSNs arrive (hard3 bounced, soft1 expired), none for the null sender" \
    fx_wait_eq -t 30 3 fx_pysink_count "$FX/sender"
sleep 1
fx_check_eq "and no more" 3 "$(fx_pysink_count "$FX/sender")"
rm -rf "$FX/got"
split_sender_mail >/dev/null
fx_check "each DSN parses as RFC 3464" "$FX_PYTHON" - "$FX/got/1.eml" "$FX/got/2.eml" <<'EOF'
import email, sys
from email import policy
seen = {}
for path in sys.argv[1:]:
    m = email.message_from_binary_file(open(path, 'rb'), policy=policy.default)
    assert m['From'] == 'Mail Delivery System <MAILER-DAEMON@mta.mxlane.test>', m['From']
    assert m.get_content_type() == 'multipart/report', m.get_content_type()
    assert m.get_param('report-type') == 'delivery-status', m.get_param('report-type')
    parts = list(m.iter_parts())
    assert [p.get_content_type() for p in parts] == ['text/plain', 'message/delivery-status', 'text/rfc822-headers'], parts
    blocks = parts[1].get_payload()          # per-message fields, then one block per recipient
    assert len(blocks) == 2, blocks
    per_msg, rcpt = blocks
    assert per_msg['Reporting-MTA'] == 'dns; mta.mxlane.test', per_msg['Reporting-MTA']
    assert per_msg['Arrival-Date'], 'no Arrival-Date'
    assert rcpt['Action'] == 'failed', rcpt['Action']
    headers = parts[2].get_payload() if isinstance(parts[2].get_payload(), str) else parts[2].get_content()
    assert 'Subject: November news' in str(headers) and 'Message-ID: <nov@sender.test>' in str(headers), headers
    seen[rcpt['Final-Recipient']] = rcpt
h = seen['rfc822; hard3@ok.test']
assert h['Status'] == '5.1.1', h['Status']
assert h['Remote-MTA'] == 'dns; mx.ok.test', h['Remote-MTA']
assert h['Diagnostic-Code'].startswith('smtp; 550 5.1.1'), h['Diagnostic-Code']
s = seen['rfc822; soft1@ok.test']
assert s['Status'] == '4.3.0', s['Status']
assert s['Diagnostic-Code'].startswith('smtp; 451 4.3.0'), s['Diagnostic-Code']
EOF
fx_check "the DSNs went with MAIL FROM:<> to the message's sender" "$FX_PYTHON" -c "
import json
r=[json.loads(l) for l in open('$FX/sender/accepted.jsonl')][1:]
assert len(r)==2 and all(x['from'] in ('', '<>') and x['rcpt']==['news@sender.test'] for x in r), r"
fx_check "the notification jobs went through the relay: relayed" bash -c "
    '$FX_CTL' -c '$FX/mxlane.conf' jobs --json | '$FX_PYTHON' -c '
import json,sys
j=[x for x in json.load(sys.stdin) if x[\"name\"].startswith(\"mxlane-notify:\")]
assert len(j)==2 and all(x[\"sender\"]==\"\" and x[\"counts\"][\"relayed\"]>=1 for x in j), j
assert sum(x[\"counts\"][\"relayed\"] for x in j)==3, j'"
fx_check "the null-sender job bounced without a DSN" bash -c "
    '$FX_CTL' -c '$FX/mxlane.conf' recipients $job3 --json | grep -q '\"state\": *\"bounced\"'"
fx_check_eq "the MX got each recipient at most once" "" "$(fx_pysink_rcpts "$FX/mx" | uniq -d)"
# ---- 3. the default (failures): a report for a finished job with a bounce, none for a job without failures
conf
sed -i '/^notify_sender/d' "$FX/mxlane.conf"
fx_check_eq "notify_sender defaults to failures" "notify_sender = failures" \
    "$("$FX_CTL" -c "$FX/mxlane.conf" config | grep '^notify_sender')"
job4=$(printf '%s\n' d@ok.test e@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
job5=$(printf '%s\n' f@ok.test hard5@ok.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check "one report arrives, for the job with a bounce" fx_wait_eq -t 30 4 fx_pysink_count "$FX/sender"
sleep 1
fx_check_eq "and no more" 4 "$(fx_pysink_count "$FX/sender")"
fx_check "the job with the bounce was reported" grep -q "$job5: sender notification: summary to <news@sender.test>" "$FX/mxlane.log"
fx_check "the job without failures was not" bash -c "! grep -q '$job4: sender notification' '$FX/mxlane.log'"
fx_check "the report names the bounced address" bash -c "
    grep -q 'hard5@ok.test' '$FX/sender/127.0.0.101.mbox'"
fx_done
