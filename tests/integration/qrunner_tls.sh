#!/bin/bash
# qrunner_tls: STARTTLS per smtp_tls_security_level (none, may, encrypt, verify), globally and per destination,
# against sinks with and without STARTTLS; what goes in clear and what does not; the TLS log line.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_tls
fx_need_built "$FX_QRUNNER" "$FX_CTL"
fx_need openssl
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

# Certificates made here: a test CA, a server certificate it signed for each
# name, a self-signed one, and one signed for another name than the MX's.
C=$FX/certs
fx_make_ca "$C"
fx_make_cert "$C" may mx.may.test
fx_make_cert "$C" verified mx.verified.test
fx_make_cert "$C" wrongname other.name.test
fx_make_selfsigned "$C" selfsigned mx.selfsigned.test
chmod 644 "$C"/*.pem

# 127.0.0.81: STARTTLS (CA-signed); .82: no STARTTLS; .83 self-signed; .84 CA-signed
# for its name; .85 CA-signed for another name.
fx_dns_start \
  'mx-host=may.test,mx.may.test,10' 'host-record=mx.may.test,127.0.0.81' \
  'mx-host=clear.test,mx.clear.test,10' 'host-record=mx.clear.test,127.0.0.82' \
  'mx-host=x.tls.test,mx.x.tls.test,10' 'host-record=mx.x.tls.test,127.0.0.82' \
  'mx-host=y.tls.test,mx.may.test,10' \
  'mx-host=none.test,mx.none.test,10' 'host-record=mx.none.test,127.0.0.81' \
  'mx-host=selfsigned.test,mx.selfsigned.test,10' 'host-record=mx.selfsigned.test,127.0.0.83' \
  'mx-host=verified.test,mx.verified.test,10' 'host-record=mx.verified.test,127.0.0.84' \
  'mx-host=wrongname.test,mx.wrongname.test,10' 'host-record=mx.wrongname.test,127.0.0.85'
fx_pysink_start "$FX/sink" "127.0.0.81:$P=tls:$C/may.pem:$C/may.key" "127.0.0.82:$P" \
  "127.0.0.83:$P=tls:$C/selfsigned.pem:$C/selfsigned.key" "127.0.0.84:$P=tls:$C/verified.pem:$C/verified.key" \
  "127.0.0.85:$P=tls:$C/wrongname.pem:$C/wrongname.key"

# Per destination: .tls.test must be encrypted (x.tls.test's MX has no STARTTLS,
# y.tls.test's has), none.test never tries, the verify ones check against the test CA.
cat > "$FX/destinations" <<EOT
# destination   settings
.tls.test        smtp_tls_security_level=encrypt
none.test        smtp_tls_security_level=none
selfsigned.test  smtp_tls_security_level=verify smtp_tls_CAfile=$C/ca.pem
verified.test    smtp_tls_security_level=verify smtp_tls_CAfile=$C/ca.pem
wrongname.test   smtp_tls_security_level=verify smtp_tls_CAfile=$C/ca.pem
EOT
fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 1h" "smtp_tls_security_level = may" \
  "destination_policy = $FX/destinations"
printf 'From: news@sender.test\nSubject: tls test\n\nbody\n' > "$FX/msg.txt"
job=$(printf '%s\n' a@may.test b@clear.test c@x.tls.test d@y.tls.test e@none.test f@selfsigned.test \
        g@verified.test h@wrongname.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_check "job created" test -n "$job"

timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?

state() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$1" --json | /usr/bin/python3 -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$2': print(r['state'], r['dsn'])"; }
# tls flag the sink recorded for each accepted recipient ("" when it got nothing)
sink_tls() { /usr/bin/python3 -c "
import json
for l in open('$FX/sink/accepted.jsonl'):
    m=json.loads(l)
    if '$1' in m['rcpt']: print('tls' if m['tls'] else 'clear')"; }
log=$FX/mxlane.log

fx_check_eq "may + STARTTLS offered: delivered" "delivered 2.0.0" "$(state "$job" a@may.test)"
fx_check_eq "... over TLS at the sink" "tls" "$(sink_tls a@may.test)"
fx_check "... TLS line with the version, its own line" grep -qE \
  "mxlane/qrunner\[[0-9]+\]: Untrusted TLS connection established to mx.may.test\[127.0.0.81\]:$P: TLSv1\.[23] with cipher " "$log"
fx_check_eq "may, no STARTTLS: delivered in clear" "delivered 2.0.0" "$(state "$job" b@clear.test)"
fx_check_eq "... in clear at the sink" "clear" "$(sink_tls b@clear.test)"
fx_check_eq "encrypt (per destination .tls.test), no STARTTLS: deferred" "deferred 4.7.4" "$(state "$job" c@x.tls.test)"
fx_check_eq "... and the sink received nothing for it" "" "$(sink_tls c@x.tls.test)"
fx_check_eq "... not even an RCPT on the connection" 0 "$(grep -c 'c@x.tls.test' "$FX/sink/connections.jsonl")"
fx_check_eq "encrypt (per destination), STARTTLS offered: delivered" "delivered 2.0.0" "$(state "$job" d@y.tls.test)"
fx_check_eq "... over TLS" "tls" "$(sink_tls d@y.tls.test)"
fx_check_eq "none (per destination) to a STARTTLS sink: delivered" "delivered 2.0.0" "$(state "$job" e@none.test)"
fx_check_eq "... in clear" "clear" "$(sink_tls e@none.test)"
fx_check_eq "verify, self-signed certificate: deferred" "deferred 4.7.5" "$(state "$job" f@selfsigned.test)"
fx_check_eq "... nothing received" "" "$(sink_tls f@selfsigned.test)"
fx_check_eq "verify, signed by the test CA for the MX name: delivered" "delivered 2.0.0" "$(state "$job" g@verified.test)"
fx_check_eq "... over TLS" "tls" "$(sink_tls g@verified.test)"
fx_check "... logged as Verified" grep -qE \
  "Verified TLS connection established to mx.verified.test\[127.0.0.84\]:$P: TLSv1\.[23] with cipher " "$log"
fx_check_eq "verify, CA-signed for another name: deferred" "deferred 4.7.5" "$(state "$job" h@wrongname.test)"
fx_check_eq "... nothing received" "" "$(sink_tls h@wrongname.test)"
fx_check "deferral says why (not offered)" grep -qE \
  "to=<c@x.tls.test>, relay=none, .*dsn=4.7.4, status=deferred \(TLS is required, but was not offered" "$log"
fx_check "deferral says why (certificate)" grep -qE \
  "to=<f@selfsigned.test>, .*dsn=4.7.5, status=deferred \(Server certificate not verified" "$log"
# The TLS facts never sit inside a delivery line (pflogsumm stops counting those).
fx_check_eq "no delivery line mentions TLS" "0" "$(grep -c 'to=<.*TLS connection\|to=<.*, tls=' "$log")"
fx_check_eq "no TLS line carries delivery fields" "0" "$(grep 'TLS connection established' "$log" | grep -c 'to=<')"
if command -v pflogsumm >/dev/null; then
  fx_check "pflogsumm counts 5 delivered" grep -qE '^ +5 +delivered' <<<"$(pflogsumm --syslog-name=mxlane "$log" 2>/dev/null)"
else
  fx_skip_part "pflogsumm counts: pflogsumm is not installed"
fi

# The global level: encrypt everywhere. The plain sink gets nothing, the TLS one delivers.
fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 1h" "smtp_tls_security_level = encrypt"
job2=$(printf '%s\n' k@may.test l@clear.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "second run exits 0" 0 $?
fx_check_eq "global encrypt, STARTTLS offered: delivered" "delivered 2.0.0" "$(state "$job2" k@may.test)"
fx_check_eq "global encrypt, no STARTTLS: deferred" "deferred 4.7.4" "$(state "$job2" l@clear.test)"
fx_check_eq "... nothing received" "" "$(sink_tls l@clear.test)"
fx_done
