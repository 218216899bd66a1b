#!/bin/bash
# qrunner_8bit: 8-bit mail to a server that announces 8BITMIME goes as it is, with BODY=8BITMIME;
# to one that does not (smtp-sink -8) it goes re-encoded as 7-bit quoted-printable (RFC 6152 3).
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init qrunner_8bit
fx_need_built "$FX_QRUNNER" "$FX_CTL"
MKJOB=$MXLANE_BUILDDIR/tests/tools/mkjob
P=$(fx_port 5)

fx_dns_start \
  'mx-host=eight.test,mx.eight.test,10' 'host-record=mx.eight.test,127.0.0.91' \
  'mx-host=seven.test,mx.seven.test,10' 'host-record=mx.seven.test,127.0.0.92'
fx_smtp_sink eight 127.0.0.91 "$P"
fx_smtp_sink seven 127.0.0.92 "$P" -8

fx_write_conf "$FX/mxlane.conf" "smtp_port = $P" "retry_schedule = 1h"
# UTF-8 text with a line over 76 characters, a line starting with a dot and trailing white space
printf 'From: news@sender.test\nSubject: 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \n.punkt\n%s\xc3\xa9\n' \
    "$(printf 'x%.0s' $(seq 100))" > "$FX/msg.txt"
job=$(printf '%s\n' a@eight.test b@seven.test | "$MKJOB" "$FX/queue" "$FX/msg.txt" --from news@sender.test)
fx_check "job created" test -n "$job"

timeout 60 "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "both recipients delivered" "delivered delivered" "$("$FX_CTL" -c "$FX/mxlane.conf" recipients "$job" --json |
    "$FX_PYTHON" -c 'import json,sys; print(" ".join(r["state"] for r in sorted(json.load(sys.stdin), key=lambda r: r["address"])))')"

# check_dump NAME WANT: the message smtp-sink NAME received, against the stored text.
check_dump() {
    "$FX_PYTHON" - "$FX/sinks/$1/dump" "$FX/msg.txt" "$2" <<'PY'
import quopri, sys
# smtp-sink's dump: its X-* lines, its Received: field, the message; LF line ends; a blank line after
dump, original, want = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read(), sys.argv[3]
lines = dump.split(b'\n')
mail_args = [l for l in lines if l.startswith(b'X-Mail-Args:')]
fields, _, body = dump.partition(b'\n\n')
body = body[:-1] if body.endswith(b'\n\n') else body
orig_body = original.split(b'\n\n', 1)[1]
if want == 'as-is':
    assert any(b'BODY=8BITMIME' in l for l in mail_args), mail_args
    assert body == orig_body, (body, orig_body)
    assert b'Content-Transfer-Encoding: 8bit' in fields, fields
else:
    assert not any(b'BODY=8BITMIME' in l for l in mail_args), mail_args
    assert all(b < 0x80 for b in dump), 'an 8-bit byte reached the server'
    assert b'Content-Transfer-Encoding: quoted-printable' in fields, fields
    assert b'Content-Transfer-Encoding: 8bit' not in fields, fields
    assert all(len(l) <= 76 for l in body.split(b'\n')), 'a line over 76'
    assert quopri.decodestring(body) == orig_body, (quopri.decodestring(body), orig_body)
PY
}
fx_check "8BITMIME server: BODY=8BITMIME, the text as stored" check_dump eight as-is
fx_check "server without 8BITMIME: no BODY=, 7-bit quoted-printable that decodes to the stored text" \
    check_dump seven downgraded
fx_done
