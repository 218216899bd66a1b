#!/bin/bash
# qrunner_protocol: servers that answer out of protocol (a 221 or 250 greeting, EHLO answered 220,
# STARTTLS answered 250 under encrypt, DATA answered 250, the dot answered 354) defer with 4.5.0, never deliver.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_protocol
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

# One MX per misbehaviour, and one server that behaves (the same script, default replies).
hosts=(greet221 greet250 ehlo220 starttls250 data250 pipedata250 dot354 good)
dns=()
for i in "${!hosts[@]}"; do
  h=${hosts[$i]}
  dns+=("mx-host=$h.test,mx.$h.test,10" "host-record=mx.$h.test,127.0.0.$((91 + i))")
done
fx_dns_start "${dns[@]}"
fx_scripted_smtp_start "$FX/srv" \
  "127.0.0.91:$P" "greeting=221 2.0.0 closing" \
  "127.0.0.92:$P" "greeting=250 mx.greet250.test hello" \
  "127.0.0.93:$P" "EHLO=220 mx.ehlo220.test ESMTP" \
  "127.0.0.94:$P" "EHLO=250-mx.starttls250.test|250 STARTTLS" "STARTTLS=250 2.0.0 go on" \
  "127.0.0.95:$P" "DATA=250 2.0.0 thank you" \
  "127.0.0.96:$P" "EHLO=250-mx.pipedata250.test|250 PIPELINING" "DATA=250 2.0.0 thank you" \
  "127.0.0.97:$P" ".=354 send more" \
  "127.0.0.98:$P"

cat > "$FX/destinations" <<EOT
starttls250.test  smtp_tls_security_level=encrypt
EOT
fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 1h" "smtp_tls_security_level = may" \
  "destination_policy = $FX/destinations" "smtp_helo_timeout = 5s" "smtp_data_done_timeout = 5s"
printf 'From: news@sender.test\nSubject: protocol\n\nSECRET-BODY-LINE\n' > "$FX/msg.txt"
job=$(for h in "${hosts[@]}"; do printf 'a@%s.test\nb@%s.test\n' "$h" "$h"; done |
        "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_check "job created" test -n "$job"

timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?

state() { "$FX_CTL" -c "$FX/mxlane.conf" recipients "$job" --json | "$FX_PYTHON" -c "
import json,sys
for r in json.load(sys.stdin):
    if r['address']=='$1': print(r['state'], r['dsn'])"; }
fx_check_eq "a server that behaves: delivered" "delivered 2.0.0" "$(state a@good.test)"
fx_check "... and it got the text" grep -q "SECRET-BODY-LINE" "$FX/srv/127.0.0.98.log"
for h in greet221 greet250 ehlo220 starttls250 data250 pipedata250 dot354; do
  for r in a b; do
    fx_check_eq "$h: $r@$h.test deferred as a protocol error" "deferred 4.5.0" "$(state "$r@$h.test")"
  done
done
for ip in 91 92 93 94 95 96; do
  fx_check "127.0.0.$ip was connected to and never received the message text" bash -c "test -f '$FX/srv/127.0.0.$ip.log' && ! grep -q SECRET-BODY-LINE '$FX/srv/127.0.0.$ip.log'"
done
fx_check "STARTTLS answered 250: no MAIL in clear text" bash -c "! grep -q 'MAIL FROM' '$FX/srv/127.0.0.94.log'"
fx_check "the log names the protocol error" \
  grep -qE 'to=<a@data250.test>.*status=deferred \(protocol error: host mx.data250.test\[127.0.0.95\] said "250 2.0.0 thank you" while sending DATA \(expected 354\)' \
  "$FX/mxlane.log"
fx_done
