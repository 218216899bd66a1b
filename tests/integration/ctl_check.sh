#!/bin/bash
# ctl_check: mxlanectl check against real DNS answers (dnsmasq: DKIM, SPF, DMARC TXT records, A and PTR)
# for a good domain and pool and for each way one can be wrong; TLS verified at the MX of check_tls_domains
# (pysink with STARTTLS, test CAs); --json rows, exit codes; compliance_check =
# hold holds a failing domain's job and delivers a passing one's, = warn logs the failures and sends.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_check
fx_need_built "$FX_QRUNNER" "$FX_CTL"
P=$(fx_port 5)
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" -c "$@"; }
run_once() { timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once; }

# ---- keys: good.test (RSA, a record over 255 bytes, and Ed25519), nodmarc.test, wrongkey.test
mkdir -p "$FX/keys"
: > "$FX/keytable"
fx_write_conf "$FX/mxlane.conf"  # for keygen: mail_owner gets the keys
key() {  # DOMAIN SELECTOR [ALGORITHM]: a new key in the key table; its TXT record on stdout
    ctl dkim keygen "$1" "$2" --algorithm "${3:-ed25519}" --out "$FX/keys/$1.$2.pem" 2>/dev/null
    echo "$1 $2 $FX/keys/$1.$2.pem" >> "$FX/keytable"
}
# keygen's zone-file line -> dnsmasq's txt-record (its strings of at most 255 bytes kept apart)
txt() { sed -E 's/^([^ ]+)\. IN TXT (.*)$/txt-record=\1,\2/; s/" "/","/g'; }
key good.test rsa1 rsa | txt > "$FX/records"
key good.test ed1 | txt >> "$FX/records"
key nodmarc.test ed1 | txt >> "$FX/records"
key wrongkey.test ed1 > /dev/null
# wrongkey.test publishes another key than its own (a key made for nothing)
ctl dkim keygen wrongkey.test ed1 --algorithm ed25519 --out "$FX/keys/other.pem" 2>/dev/null | txt >> "$FX/records"
fx_check_eq "keys made (3 domains, 4 keys in the table)" 4 "$(wc -l < "$FX/keytable")"
fx_check "the RSA record is split into strings" grep -q '^txt-record=rsa1._domainkey.good.test,"v=DKIM1; k=rsa; p=[^"]*","' "$FX/records"

cat >> "$FX/records" <<'REC'
txt-record=good.test,"v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all"
txt-record=_dmarc.good.test,"v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
txt-record=nodmarc.test,"v=spf1 include:good.test -all"
txt-record=wrongkey.test,"v=spf1 a:mta2.good.test -all"
txt-record=_dmarc.wrongkey.test,"v=DMARC1; p=none"
host-record=mta2.good.test,127.0.0.2
host-record=other.good.test,127.0.0.3
address=/mta4.good.test/127.0.0.4
mx-host=rcpt.test,mx.rcpt.test,10
host-record=mx.rcpt.test,127.0.0.21
local=/0.0.127.in-addr.arpa/
mx-host=tlsgood.test,mx.tlsgood.test,10
host-record=mx.tlsgood.test,127.0.0.31
mx-host=wrongname.test,mx.wrongname.test,10
host-record=mx.wrongname.test,127.0.0.32
mx-host=otherca.test,mx.otherca.test,10
host-record=mx.otherca.test,127.0.0.33
mx-host=notls.test,mx.notls.test,10
host-record=mx.notls.test,127.0.0.34
mx-host=deadmx.test,mx.deadmx.test,10
host-record=mx.deadmx.test,127.0.0.35
REC
fx_dns_start_file "$FX/records"
printf 'news 127.0.0.2 mta2.good.test\n' > "$FX/pool.good"
# .3: its PTR (other.good.test) is not its HELO name; .4: no PTR, and outside good.test's SPF
printf 'news 127.0.0.2 mta2.good.test\nnews 127.0.0.3 mta3.good.test\nnews 127.0.0.4 mta4.good.test\n' > "$FX/pool.bad"
conf() {
    fx_write_conf "$FX/mxlane.conf" smtp_port="$P" dns_timeout=1s retry_schedule=1h smtp_tls_security_level=none \
        dkim_key_table="$FX/keytable" source_pools="$FX/pool.good" unsubscribe_url=https://good.test/u/ "$@"
}
conf

# rows CHECK SUBJECT: "result" of that row of the JSON in $FX/out ("absent" when there is none)
row() { py 'import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["check"] == sys.argv[2] and r["subject"] == sys.argv[3]]
print(" ".join(r["result"] for r in rows) or "absent")' "$FX/out" "$1" "$2"; }
detail() { py 'import json, sys
print(" | ".join(r["detail"] for r in json.load(open(sys.argv[1])) if r["check"] == sys.argv[2] and r["subject"] == sys.argv[3]))' "$FX/out" "$1" "$2"; }

# ---- the good domain from the good pool: everything passes, TLS is skipped (warn)
ctl check good.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "good.test: exit 0" 0 $?
fx_check "every row has check, subject, result, detail; results pass or warn" py 'import json, sys
rows = json.load(open(sys.argv[1]))
assert rows and all(set(r) == {"check", "subject", "result", "detail"} for r in rows), rows
assert all(r["result"] in ("pass", "warn") for r in rows), rows' "$FX/out"
fx_check_eq "dkim: both keys' records match" "pass pass" \
    "$(row dkim rsa1._domainkey.good.test) $(row dkim ed1._domainkey.good.test)"
fx_check_eq "spf: the pool's address is allowed" pass "$(row spf 'good.test from 127.0.0.2')"
fx_check_eq "dmarc: found and parsed" pass "$(row dmarc _dmarc.good.test)"
fx_check_eq "ptr: 127.0.0.2 is mta2.good.test, forward-confirmed, its HELO name" pass "$(row ptr 127.0.0.2)"
fx_check_eq "List-Unsubscribe: one-click configured" pass "$(row unsubscribe List-Unsubscribe)"
fx_check_eq "tls: the big providers (no answer from this DNS) are skipped with a warning" "warn warn warn" \
    "$(row tls gmail.com) $(row tls yahoo.com) $(row tls outlook.com)"
fx_check "  saying they are unreachable (offline?)" grep -q 'skipped: no MX of gmail.com known .*(offline?)' <<< "$(detail tls gmail.com)"

ctl check good.test > "$FX/out.txt"
fx_check_eq "the plain table: exit 0" 0 $?
fx_check "the plain table has a header and a row per check" bash -c "head -1 '$FX/out.txt' | grep -q '^CHECK  *SUBJECT  *RESULT  *DETAIL' && grep -q '^spf  *good.test from 127.0.0.2  *pass' '$FX/out.txt'"

# ---- tls: STARTTLS at each domain's first reachable MX, the certificate verified against
# smtp_tls_CAfile and the MX name. .31: signed by the test CA for its name; .32: for another
# name; .33: by another CA; .34: no STARTTLS; .35: nothing listens; nomx.test: NXDOMAIN.
C=$FX/certs
fx_make_ca "$C"
fx_make_cert "$C" tlsgood mx.tlsgood.test
fx_make_cert "$C" wrongname other.name.test
fx_make_cert "$FX/otherca" otherca mx.otherca.test
fx_pysink_start "$FX/tlssink" "127.0.0.31:$P=tls:$C/tlsgood.pem:$C/tlsgood.key" \
    "127.0.0.32:$P=tls:$C/wrongname.pem:$C/wrongname.key" \
    "127.0.0.33:$P=tls:$FX/otherca/otherca.pem:$FX/otherca/otherca.key" "127.0.0.34:$P"
conf smtp_tls_CAfile="$C/ca.pem" check_tls_domains="tlsgood.test, wrongname.test, otherca.test, notls.test, nomx.test, deadmx.test"
ctl check good.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "tls: exit 1 (three MX fail verification)" 1 $?
fx_check_eq "tls: verified passes; wrong name, other CA, no STARTTLS fail; no MX, no listener warn" \
    "pass fail fail fail warn warn" "$(for d in tlsgood wrongname otherca notls nomx deadmx; do row tls $d.test; done | xargs)"
fx_check "  the pass names the MX, the TLS version and cipher" grep -qE \
    "^mx.tlsgood.test\[127.0.0.31\]:$P: TLSv1\.[23] with cipher [A-Z0-9_-]+ .*verified" <<< "$(detail tls tlsgood.test)"
fx_check "  the wrong name fails with the verify error" grep -q 'Server certificate not verified for mx.wrongname.test\[127.0.0.32\]: .*mismatch' \
    <<< "$(detail tls wrongname.test)"
fx_check "  the other CA fails with the verify error" grep -q 'Server certificate not verified for mx.otherca.test\[127.0.0.33\]: unable to get local issuer certificate' \
    <<< "$(detail tls otherca.test)"
fx_check "  no STARTTLS says so" grep -q 'TLS is required, but was not offered by host mx.notls.test\[127.0.0.34\]' <<< "$(detail tls notls.test)"
fx_check "  no MX and no listener are skipped (offline?)" bash -c "grep -q 'skipped: no MX of nomx.test known' <<< '$(detail tls nomx.test)' &&
    grep -q 'skipped: no MX of deadmx.test reachable (connect to mx.deadmx.test\[127.0.0.35\]:$P: Connection refused)' <<< '$(detail tls deadmx.test)'"
tls_conns() { py 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])] if __import__("os").path.exists(sys.argv[1]) else []
print(" ".join("tls=%s mails=%d" % (r["tls"], r["mails"]) for r in rows if r["ip"] == "127.0.0.31"))' "$FX/tlssink/connections.jsonl"; }
fx_wait_eq "tls=True mails=0" tls_conns
fx_check_eq "  the verified MX had one connection, in TLS, that sent no mail" "tls=True mails=0" "$(tls_conns)"
conf smtp_tls_CAfile="$C/ca.pem" check_tls_domains=tlsgood.test
ctl check good.test > /dev/null 2> "$FX/err"
fx_check_eq "tls: only the verified MX: exit 0" 0 $?
conf check_tls_domains=tlsgood.test
ctl check good.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "tls: the test CA not trusted (the system store): exit 1" "1 fail" "$? $(row tls tlsgood.test)"
conf check_tls_domains=gmail.com dns_servers="127.0.0.1:$FX_DEAD_PORT"
ctl check good.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "offline (DNS never answers): exit 0, the tls row a warning" "0 warn" "$? $(row tls gmail.com)"
conf check_tls_domains=
ctl check good.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "check_tls_domains empty: no tls row" absent "$(row tls gmail.com)"

# ---- a domain without DMARC, and one whose published DKIM key is not its own
ctl check nodmarc.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "nodmarc.test: exit 1" 1 $?
fx_check_eq "nodmarc.test: no DMARC record is a failure" "fail" "$(row dmarc _dmarc.nodmarc.test)"
fx_check_eq "nodmarc.test: its SPF include allows the pool; its key matches" "pass pass" \
    "$(row spf 'nodmarc.test from 127.0.0.2') $(row dkim ed1._domainkey.nodmarc.test)"
ctl check wrongkey.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "wrongkey.test: exit 1" 1 $?
fx_check_eq "wrongkey.test: the DKIM record with another key fails" fail "$(row dkim ed1._domainkey.wrongkey.test)"
fx_check "  and says so" grep -q "is not $FX/keys/wrongkey.test.ed1.pem's" <<< "$(detail dkim ed1._domainkey.wrongkey.test)"
fx_check_eq "wrongkey.test: SPF by a: and DMARC pass" "pass pass" "$(row spf 'wrongkey.test from 127.0.0.2') $(row dmarc _dmarc.wrongkey.test)"

# ---- the bad pool: no PTR, a PTR that is not the HELO name, an address outside SPF
conf source_pools="$FX/pool.bad"
ctl check good.test --json > "$FX/out" 2> "$FX/err"
fx_check_eq "bad pool: exit 1" 1 $?
fx_check_eq "ptr: .2 passes, .3 (PTR not the HELO name) and .4 (no PTR) fail" "pass fail fail" \
    "$(row ptr 127.0.0.2) $(row ptr 127.0.0.3) $(row ptr 127.0.0.4)"
fx_check "  saying why" grep -q 'the PTR name other.good.test is not the HELO name mta3.good.test' <<< "$(detail ptr 127.0.0.3)"
fx_check "  and that .4 has none" grep -q 'no PTR record' <<< "$(detail ptr 127.0.0.4)"
fx_check_eq "spf: .2 and .3 allowed, .4 not" "pass pass fail" \
    "$(row spf 'good.test from 127.0.0.2') $(row spf 'good.test from 127.0.0.3') $(row spf 'good.test from 127.0.0.4')"

# ---- no domain named: the key table's; bad input
conf unsubscribe_url=
ctl check --json > "$FX/out" 2> "$FX/err"
fx_check_eq "no domain named: exit 1 (nodmarc, wrongkey, no List-Unsubscribe)" 1 $?
fx_check "  the key table's three domains are checked" py 'import json, sys
subjects = {r["subject"] for r in json.load(open(sys.argv[1])) if r["check"] == "dmarc"}
assert subjects == {"_dmarc.good.test", "_dmarc.nodmarc.test", "_dmarc.wrongkey.test"}, subjects' "$FX/out"
fx_check_eq "no List-Unsubscribe configured fails" fail "$(row unsubscribe List-Unsubscribe)"
ctl check --bogus > /dev/null 2> "$FX/err"
fx_check_eq "an unknown option: exit 1, saying so" "1 mxlanectl: check: unknown option --bogus" "$? $(cat "$FX/err")"
conf source_pools="$FX/nonexistent"
ctl check good.test > /dev/null 2> "$FX/err"
fx_check "a source_pools file that cannot be read: exit 1, naming it" bash -c "[ $? = 1 ] && grep -q 'source_pools' '$FX/err'"

# ---- compliance_check = hold: a failing domain's job is held, a passing one's delivered
fx_pysink_start "$FX/sink" "127.0.0.21:$P"
conf compliance_check=hold
printf 'email\na@rcpt.test\nb@rcpt.test\n' > "$FX/list.csv"
printf 'From: news@good.test\nSubject: good\n\nhello\n' > "$FX/good.txt"
printf 'From: news@nodmarc.test\nSubject: nodmarc\n\nhello\n' > "$FX/nodmarc.txt"
good=$(ctl submit --message "$FX/good.txt" --recipients "$FX/list.csv" --name good 2>"$FX/err")
bad=$(ctl submit --message "$FX/nodmarc.txt" --recipients "$FX/list.csv" --name nodmarc 2>"$FX/err")
run_once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "hold: the passing domain's two messages delivered, nothing of the failing one" "2 0" \
    "$(fx_pysink_count "$FX/sink") $(grep -c '^Subject: nodmarc' "$FX/sink/127.0.0.21.mbox")"
fx_check "the failing domain's job is held, with the reasons" py 'import json, sys
j = json.loads(sys.argv[1])
assert j["state"] == "held", j
assert "compliance_check" in j["hold_reason"] and "nodmarc.test" in j["hold_reason"] and "no DMARC record" in j["hold_reason"], j
assert j["counts"]["held"] == 2, j' "$(ctl job "$bad" --json)"
fx_check "the log says it was held and why" grep -q "$bad: held: compliance_check: the sending domain nodmarc.test fails: dmarc _dmarc.nodmarc.test: no DMARC record" "$FX/mxlane.log"
fx_check "mxlanectl jobs shows it held" bash -c "'$FX_CTL' -c '$FX/mxlane.conf' jobs | grep '^$bad' | grep -q held"

# ---- hold checks the job's own pool: pool news (127.0.0.2, good) is not held for pool bad's
# 127.0.0.4 (no PTR, outside SPF); a job of pool bad is
printf 'news 127.0.0.2 mta2.good.test\nbad 127.0.0.4 mta4.good.test\n' > "$FX/pool.two"
conf compliance_check=hold source_pools="$FX/pool.two"
printf 'From: news@good.test\nSubject: pool news\n\nhello\n' > "$FX/news.txt"
printf 'From: news@good.test\nSubject: pool bad\n\nhello\n' > "$FX/bad.txt"
news=$(ctl submit --message "$FX/news.txt" --recipients "$FX/list.csv" --name news --pool news 2>"$FX/err")
badpool=$(ctl submit --message "$FX/bad.txt" --recipients "$FX/list.csv" --name badpool --pool bad 2>"$FX/err")
run_once
fx_check_eq "hold, two pools: pool news's job delivered (from 127.0.0.2), pool bad's not" "2 0" \
    "$(grep -c '^Subject: pool news' "$FX/sink/127.0.0.21.mbox") $(grep -c '^Subject: pool bad' "$FX/sink/127.0.0.21.mbox")"
fx_check_eq "  pool news's job is not held" done "$(ctl job "$news" --json | py 'import json, sys; print(json.load(sys.stdin)["state"])')"
fx_check "  pool bad's job is held for its own address only" py 'import json, sys
j = json.loads(sys.argv[1])
assert j["state"] == "held", j
r = j["hold_reason"]
assert "good.test from pool bad fails" in r and "127.0.0.4" in r and "127.0.0.2" not in r, r' "$(ctl job "$badpool" --json)"

# ---- compliance_check = warn (the default): sent, and the failures logged
conf
warned=$(ctl submit --message "$FX/nodmarc.txt" --recipients "$FX/list.csv" --name warned 2>"$FX/err")
run_once
fx_check_eq "warn: the failing domain's messages are sent" 2 "$(grep -c '^Subject: nodmarc' "$FX/sink/127.0.0.21.mbox")"
fx_check "warn: the log names the job and the failures" grep -q "$warned: the sending domain nodmarc.test fails compliance_check (warn): dmarc _dmarc.nodmarc.test: no DMARC record" "$FX/mxlane.log"

fx_done
