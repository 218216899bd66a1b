#!/bin/bash
# qrunner_dkim: keys from mxlanectl dkim keygen; personalised, plain, relayed and downgraded 8-bit mail signed
# (RSA + Ed25519), each message verified at the sink by dkimpy with keygen's TXT records; missing and bad keys.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_dkim
fx_need_built "$FX_QRUNNER" "$FX_CTL"
"$FX_PYTHON" -c 'import dkim, nacl' 2>/dev/null || fx_skip "python3-dkim and python3-nacl are not installed"
P=$(fx_port 5)
RP=$(fx_port 6)
fx_dns_start 'mx-host=a.test,mx.a.test,10' 'host-record=mx.a.test,127.0.0.21' \
             'mx-host=b.test,mx.a.test,10' \
             'mx-host=seven.test,mx.seven.test,10' 'host-record=mx.seven.test,127.0.0.23'
fx_pysink_start "$FX/sink" "127.0.0.21:$P" "127.0.0.22:$RP"
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" -c "$@"; }
verify() { "$FX_PYTHON" "$MXLANE_SRCDIR/tests/fixtures/dkim_verify.py" "$FX/records" "$@"; }
run_once() { timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once; }
conf() {
    fx_write_conf "$FX/mxlane.conf" smtp_port="$P" dns_timeout=1s retry_schedule=1h smtp_tls_security_level=none \
        dkim_key_table="$FX/keytable" "$@"
}
conf

# ---- keygen: a key file of mode 0600 given to mail_owner, and the record to publish
mkdir -p "$FX/keys"
ctl dkim keygen shop.test rsa1 --out "$FX/keys/rsa1.pem" > "$FX/records" 2> "$FX/keygen.err"
fx_check_eq "keygen rsa exits 0" 0 $?
ctl dkim keygen shop.test ed1 --algorithm ed25519 --out "$FX/keys/ed1.pem" >> "$FX/records" 2>> "$FX/keygen.err"
fx_check_eq "keygen ed25519 exits 0" 0 $?
owner=$(fx_conf_get "$FX/mxlane.conf" mail_owner)
fx_check_eq "the key files: mode 0600, owned by mail_owner" "600 $owner 600 $owner" \
    "$(stat -c '%a %U' "$FX/keys/rsa1.pem" "$FX/keys/ed1.pem" | tr '\n' ' ' | sed 's/ $//')"
fx_check "keygen prints one TXT record per key, RSA 2048 bits and Ed25519" py 'import re, sys, base64
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
assert lines[0].startswith("rsa1._domainkey.shop.test. IN TXT \"v=DKIM1; k=rsa; p="), lines[0]
assert lines[1].startswith("ed1._domainkey.shop.test. IN TXT \"v=DKIM1; k=ed25519; p="), lines[1]
assert all(len(s) <= 255 for s in re.findall(r"\"([^\"]*)\"", lines[0])), "a TXT string over 255"
p = "".join(re.findall(r"\"([^\"]*)\"", lines[1])).split("p=")[1]
assert len(base64.b64decode(p)) == 32, p' "$FX/records"
cp "$FX/keys/rsa1.pem" "$FX/rsa1.copy"
ctl dkim keygen shop.test rsa1 --out "$FX/keys/rsa1.pem" > /dev/null 2> "$FX/err"
fx_check_eq "keygen never writes over a key" "1 same" "$? $(cmp -s "$FX/rsa1.copy" "$FX/keys/rsa1.pem" && echo same)"
ctl dkim keygen 'shop..test' s1 --out "$FX/keys/s1.pem" > /dev/null 2> "$FX/err"
fx_check_eq "keygen refuses a bad domain, saying so, writing nothing" "1 mxlanectl: not a domain name: shop..test absent" \
    "$? $(cat "$FX/err") $([ -e "$FX/keys/s1.pem" ] || echo absent)"
ctl dkim keygen shop.test small --bits 512 --out "$FX/keys/small.pem" > /dev/null 2> "$FX/err"
fx_check_eq "keygen refuses RSA under 1024 bits, writing nothing" "1 absent" \
    "$? $([ -e "$FX/keys/small.pem" ] || echo absent)"

printf '# the test keys\nshop.test rsa1 %s\nshop.test ed1 %s\n' "$FX/keys/rsa1.pem" "$FX/keys/ed1.pem" > "$FX/keytable"
fx_check "dkim list: both keys, their type and bits, and keygen's records" py 'import json, sys
rows = json.loads(sys.argv[1])
assert [(r["selector"], r["algorithm"], r["bits"]) for r in rows] == [("rsa1", "rsa-sha256", 2048), ("ed1", "ed25519-sha256", 256)], rows
assert [r["txt"] for r in rows] == open(sys.argv[2]).read().splitlines(), rows' "$(ctl dkim list --json)" "$FX/records"

# ---- a personalised job from a subdomain of the key's domain (relaxed alignment: d=shop.test)
printf 'From: News <news@news.shop.test>\nTo: {{email}}\nSubject: Hello {{first}}\nX-Folded: one\n  two   \n\nDear {{first}},  \n\n.a line with a dot\ntrailing tabs\t\t\nGr\xc3\xbc\xc3\x9fe\n\n\n' > "$FX/msg.txt"
printf 'email,first\nann@a.test,Ann\nbob@b.test,Bob\ncy@a.test,Cy\n' > "$FX/list.csv"
job=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/list.csv" --name pers 2>"$FX/err")
fx_check "personalised job submitted" test -n "$job"
run_once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "three messages at the sink" 3 "$(fx_pysink_count "$FX/sink")"
fx_check "every message: an RSA and an Ed25519 signature, d=shop.test, both verify" \
    verify --mbox "$FX/sink/127.0.0.21.mbox" --signatures 2 --domain shop.test
fx_check "a changed body fails every signature" verify --mbox "$FX/sink/127.0.0.21.mbox" --tamper
fx_check_eq "one signature line per personalised message, apart from the delivery lines" 3 \
    "$(grep -c "$job: message [0-9]* to .*: DKIM-Signature field added (d=shop.test s=rsa1 a=rsa-sha256, d=shop.test s=ed1 a=ed25519-sha256)" "$FX/mxlane.log")"
fx_check_eq "no delivery line mentions DKIM" 0 "$(grep 'status=' "$FX/mxlane.log" | grep -c DKIM)"

# ---- a plain job: signed once, the signed text reused for every transaction
printf 'From: news@shop.test\nTo: list@shop.test\nSubject: plain\n\nthe same for all\n' > "$FX/plain.txt"
plain=$(ctl submit --message "$FX/plain.txt" --recipients "$FX/list.csv" --name plain 2>"$FX/err")
: > "$FX/sink/127.0.0.21.mbox"
run_once
fx_check_eq "plain job: three recipients delivered" "delivered delivered delivered" \
    "$(ctl recipients "$plain" --json | py 'import json,sys; print(" ".join(r["state"] for r in json.load(sys.stdin)))')"
fx_check "plain job: every message verifies" verify --mbox "$FX/sink/127.0.0.21.mbox" --signatures 2 --domain shop.test
fx_check_eq "plain job: signed once (one signature line for the message)" 1 \
    "$(grep -c "$plain: message [0-9]*: DKIM-Signature field added" "$FX/mxlane.log")"

# ---- relay mode: signed too; the loop header added for the relay stays outside the signature
conf delivery_mode=relay "relay_host=[127.0.0.22]:$RP"
rjob=$(ctl submit --message "$FX/msg.txt" --recipients "$FX/list.csv" --name relayed 2>"$FX/err")
run_once
fx_check_eq "relay: three messages at the relay" 3 "$(grep -c '^From pysink@' "$FX/sink/127.0.0.22.mbox")"
fx_check "relay: the loop header is there" grep -q '^X-Mxlane-Relayed:' "$FX/sink/127.0.0.22.mbox"
fx_check "relay: every message verifies" verify --mbox "$FX/sink/127.0.0.22.mbox" --signatures 2 --domain shop.test
fx_check "relay: a changed body fails" verify --mbox "$FX/sink/127.0.0.22.mbox" --tamper

# ---- 8-bit to a server without 8BITMIME: the 7-bit form is what is signed
if [ -x "$FX_SMTP_SINK" ]; then
    conf
    fx_smtp_sink seven 127.0.0.23 "$P" -8
    printf 'email,first\nz@seven.test,Zed\n' > "$FX/seven.csv"
    printf 'From: news@shop.test\nSubject: 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\n' > "$FX/eight.txt"
    ctl submit --message "$FX/eight.txt" --recipients "$FX/seven.csv" --name eight >/dev/null 2>"$FX/err"
    run_once
    fx_check "8-bit, no 8BITMIME: sent as quoted-printable" grep -q 'Content-Transfer-Encoding: quoted-printable' "$FX/sinks/seven/dump"
    fx_check "8-bit, no 8BITMIME: the signatures verify" verify --dump "$FX/sinks/seven/dump" --signatures 2
else
    fx_skip_part "smtp-sink (postfix) is not installed: the 8-bit downgrade part"
fi

# ---- a From: domain without a key: send (unsigned, one warning) or hold (with the reason)
conf
printf 'From: news@other.test\nSubject: no key {{first}}\n\nhi\n' > "$FX/other.txt"
sent=$(ctl submit --message "$FX/other.txt" --recipients "$FX/list.csv" --name unsigned 2>"$FX/err")
: > "$FX/sink/127.0.0.21.mbox"
run_once
fx_check_eq "dkim_missing_key = send: delivered unsigned" 3 "$(grep -c '^Subject: no key' "$FX/sink/127.0.0.21.mbox")"
fx_check_eq "no DKIM-Signature on them" 0 "$(grep -ci '^DKIM-Signature' "$FX/sink/127.0.0.21.mbox")"
fx_check_eq "one warning for the job" 1 "$(grep -c "$sent: no DKIM key in dkim_key_table for the From: domain other.test: sent unsigned" "$FX/mxlane.log")"
conf dkim_missing_key=hold
held=$(ctl submit --message "$FX/other.txt" --recipients "$FX/list.csv" --name heldjob 2>"$FX/err")
before=$(fx_pysink_count "$FX/sink")
run_once
fx_check_eq "dkim_missing_key = hold: nothing sent" "$before" "$(fx_pysink_count "$FX/sink")"
fx_check "the job is held with the reason" py 'import json, sys
j = json.loads(sys.argv[1])
assert j["state"] == "held", j
assert "other.test" in j["hold_reason"] and "DKIM" in j["hold_reason"], j
assert j["counts"]["held"] == 3, j' "$(ctl job "$held" --json)"
fx_check "mxlanectl job shows the reason" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' job $held | grep -q 'state: *held (no DKIM key'"

# ---- bad keys stop the start with one line naming the file and the problem
printf 'not a key\n' > "$FX/keys/bad.pem"

# ---- SIGHUP meeting a bad key keeps the running keys, which sign what comes next
conf
# As a daemon: its start returns once the signals are handled (a SIGHUP earlier would end it).
"$FX_QRUNNER" -c "$FX/mxlane.conf" > "$FX/qrunner.start" 2>&1 || fx_fatal "the qrunner did not start: $(cat "$FX/qrunner.start")"
fx_wait_for test -s "$FX/queue/qrunner.pid"
QPID=$(cat "$FX/queue/qrunner.pid")
fx_register_pid "$QPID"
cp "$FX/keytable" "$FX/keytable.good"
printf 'shop.test rsa1 %s\n' "$FX/keys/bad.pem" > "$FX/keytable"
kill -HUP "$QPID"
fx_check "SIGHUP with a bad key: refused with the file and the problem, the old keys kept" fx_wait_for -t 10 \
    grep -q "reload refused, keeping the running configuration: dkim_key_table: $FX/keys/bad.pem: not a PEM private key" "$FX/mxlane.log"
: > "$FX/sink/127.0.0.21.mbox"
ctl submit --message "$FX/msg.txt" --recipients "$FX/list.csv" --name afterhup > /dev/null 2>"$FX/err"
fx_wait_for -t 30 bash -c "[ \$(grep -c '^From pysink@' '$FX/sink/127.0.0.21.mbox') -ge 3 ]"
fx_check "after the refused reload: still signed with both keys, verified" \
    verify --mbox "$FX/sink/127.0.0.21.mbox" --signatures 2 --domain shop.test
# a good table on the next SIGHUP takes effect: only the Ed25519 key signs from now on
printf 'shop.test ed1 %s\n' "$FX/keys/ed1.pem" > "$FX/keytable"
kill -HUP "$QPID"
fx_check "SIGHUP with a good table: reloaded" fx_wait_for -t 10 grep -q "reloaded $FX/mxlane.conf" "$FX/mxlane.log"
: > "$FX/sink/127.0.0.21.mbox"
ctl submit --message "$FX/msg.txt" --recipients "$FX/list.csv" --name rotated > /dev/null 2>"$FX/err"
fx_wait_for -t 30 bash -c "[ \$(grep -c '^From pysink@' '$FX/sink/127.0.0.21.mbox') -ge 3 ]"
fx_check "after the reload: one signature, by the Ed25519 key, verified" \
    verify --mbox "$FX/sink/127.0.0.21.mbox" --signatures 1 --domain shop.test
fx_stop_pid "$QPID"
cp "$FX/keytable.good" "$FX/keytable"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$FX/keys/ec.pem" 2>/dev/null
chown "$owner" "$FX/keys/bad.pem" "$FX/keys/ec.pem"
# a good key that root can read but mail_owner cannot: found after the qrunner has become mail_owner
cp "$FX/keys/ed1.pem" "$FX/keys/root.pem"
chown root:root "$FX/keys/root.pem"
chmod 600 "$FX/keys/root.pem"
for case in "bad.pem:not a PEM private key" "ec.pem:key of unknown type" "gone.pem:cannot read: No such file" \
            "root.pem:cannot read: Permission denied (as mail_owner $owner)"; do
    f=${case%%:*}
    printf 'shop.test sel %s\n' "$FX/keys/$f" > "$FX/keytable.bad"
    conf dkim_key_table="$FX/keytable.bad"
    run_once 2> "$FX/start.err"
    rc=$?
    fx_check "$f: the qrunner does not start, saying which file and why" \
        bash -c "[ $rc -ne 0 ] && grep -q 'fatal: dkim_key_table: $FX/keys/$f: ${case#*:}' '$FX/start.err' && [ \$(grep -c fatal '$FX/start.err') -eq 1 ]"
done
fx_done
