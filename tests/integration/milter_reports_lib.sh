# milter_reports_lib.sh - what the report tests on Postfix and Sendmail share (sourced): the tokens a
# job's copies went out with, reports as remote MTAs and feedback loops send them, and the store's view.
# Needs $FX, $FX_PYTHON, $FX_CTL, the job's sink in $FX/sinkq, the MTA's port in $P and $job.

ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }

# token ADDRESS: the TOKEN of the VERP sender its copy went out with
token() {
    "$FX_PYTHON" - "$FX/sinkq/accepted.jsonl" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["rcpt"] == [sys.argv[2]] and r["from"].startswith("bounces+"):
        print(r["from"][len("bounces+"):].split("@")[0])
PY
}
# inject FROM TO FILE: one message through Postfix (SMTP); prints the reply code to the final dot.
inject() {
    "$FX_PYTHON" - "$P" "$1" "$2" "$3" <<'PY'
import smtplib, sys
port, sender, rcpt, path = sys.argv[1:5]
with smtplib.SMTP("127.0.0.1", int(port), local_hostname="mx.isp.test", timeout=30) as s:
    try:
        # CRLF line ends: Sendmail refuses bare LF (421 4.5.0)
        s.sendmail(sender, [rcpt], open(path, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        print(250)
    except smtplib.SMTPRecipientsRefused as e:
        print(list(e.recipients.values())[0][0])
    except smtplib.SMTPResponseException as e:
        print(e.smtp_code)
PY
}
# dsn FILE TO FINAL-RECIPIENT ACTION STATUS DIAGNOSTIC: an RFC 3464 report as a remote MTA sends it.
dsn() {
    local b="dsn-boundary-$RANDOM"
    {
        printf 'From: MAILER-DAEMON@mx.isp.test\nTo: %s\nSubject: Undelivered Mail Returned to Sender\n' "$2"
        printf 'Date: Wed, 2 Dec 2026 10:00:00 +0000\nMessage-ID: <dsn.%s@mx.isp.test>\nMIME-Version: 1.0\n' "$RANDOM"
        printf 'Content-Type: multipart/report; report-type=delivery-status; boundary="%s"\n\n' "$b"
        printf -- '--%s\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n' "$b"
        printf -- '--%s\nContent-Type: message/delivery-status\n\n' "$b"
        printf 'Reporting-MTA: dns; mx.isp.test\nArrival-Date: Wed, 2 Dec 2026 09:59:00 +0000\n\n'
        printf 'Final-Recipient: rfc822; %s\nOriginal-Recipient: rfc822;%s\nAction: %s\nStatus: %s\n' "$3" "$3" "$4" "$5"
        printf 'Remote-MTA: dns; store.isp.test\nDiagnostic-Code: smtp; %s\n\n' "$6"
        printf -- '--%s\nContent-Type: text/rfc822-headers\n\n' "$b"
        printf 'Return-Path: <%s>\nFrom: news@shop.test\nSubject: spring offers\n\n' "$2"
        printf -- '--%s--\n' "$b"
    } > "$1"
}
state() { ctl recipients "$job" --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$1': print(r['state'], r['dsn'])"; }
suppressed() { ctl suppress list --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$1': print(r['reason'], r['job'])"; }

# arf FILE TOKEN: an ARF complaint (RFC 5965) whose reported copy keeps the VERP Return-Path, the
# recipient redacted.
arf() {
    {
        printf 'From: feedback@fbl.isp.test\nTo: fbl@shop.test\nSubject: FW: spring offers\n'
        printf 'Date: Wed, 2 Dec 2026 11:00:00 +0000\nMessage-ID: <arf.%s@fbl.isp.test>\nMIME-Version: 1.0\n' "$RANDOM"
        printf 'Content-Type: multipart/report; report-type=feedback-report; boundary="arf-b"\n\n'
        printf -- '--arf-b\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n'
        printf -- '--arf-b\nContent-Type: message/feedback-report\n\n'
        printf 'Feedback-Type: abuse\nUser-Agent: isp-fbl/2.1\nVersion: 1\n'
        printf 'Arrival-Date: Wed, 2 Dec 2026 09:00:00 +0000\nSource-IP: 127.0.0.1\nReported-Domain: shop.test\n\n'
        printf -- '--arf-b\nContent-Type: message/rfc822\n\n'
        printf 'Return-Path: <bounces+%s@shop.test>\nFrom: news@shop.test\nTo: redacted@isp.test\nSubject: spring offers\n\nbody\n' "$2"
        printf -- '--arf-b--\n'
    } > "$1"
}
# events FILE TYPE: the recipients of the events of TYPE in an event_log (or webhook spool) file, sorted.
events() {
    "$FX_PYTHON" - "$1" "$2" <<'PY'
import json, sys
out = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] == sys.argv[2]:
        out.append(e["recipient"])
print(" ".join(sorted(out)))
PY
}
