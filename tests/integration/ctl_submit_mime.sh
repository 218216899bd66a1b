#!/bin/bash
# ctl_submit_mime: a newsletter built by Python's email package (QP text, base64 HTML, a Latin-1 part), personalised per recipient; every part and header decodes to the exact values, in RFC 2047 form or, sent with SMTPUTF8, raw UTF-8.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init ctl_submit_mime
for p in "$FX_CTL" "$FX_QRUNNER"; do [ -x "$p" ] || fx_fatal "$p not built (run make first)"; done
P=$(fx_port 5)
fx_dns_start 'mx-host=a.test,mx.a.test,10' 'host-record=mx.a.test,127.0.0.21' \
             'mx-host=b.test,mx.a.test,10' 'mx-host=u.test,mx.u.test,10' 'host-record=mx.u.test,127.0.0.22'
fx_pysink_start "$FX/sink" "127.0.0.21:$P"
fx_pysink_start "$FX/sink8" "127.0.0.22:$P=smtputf8"
fx_write_conf "$FX/mxlane.conf" smtp_port="$P" dns_timeout=1s retry_schedule=1h smtp_tls_security_level=none
ctl() { "$FX_CTL" -c "$FX/mxlane.conf" "$@"; }
py() { "$FX_PYTHON" "$@"; }
BOUNDARY='==mxlane-test-boundary=='

# ---- the template, as a mail library writes it
py - "$FX/msg.eml" "$BOUNDARY" <<'PY'
import sys
from email.message import EmailMessage
from email import policy
m = EmailMessage(policy=policy.SMTP)
m['From'] = 'Shop Team <news@shop.test>'
m['To'] = '{{name}} <{{email}}>'
m['Subject'] = 'Hallo {{name}}, your offer'
m['List-Unsubscribe'] = '<https://shop.test/u?e={{email}}>'
m.set_content('Hallo {{name}},\nyour offer: {{link}}\nnote: {{note}}\nGrüße, the shop ' + 'x' * 70 + '\n',
              charset='utf-8', cte='quoted-printable')
m.add_alternative('<html><body><p>Hallo {{name}}</p><a href="{{link}}">offer</a><pre>{{note}}</pre></body></html>\n',
                  subtype='html', charset='utf-8', cte='base64')
m.make_mixed()
m.add_attachment('Grüße an {{name}}\n'.encode('latin-1'), maintype='text', subtype='plain',
                 filename='gruss.txt', cte='quoted-printable')
m.get_payload()[1].set_param('charset', 'iso-8859-1')
m.set_boundary(sys.argv[2])
open(sys.argv[1], 'wb').write(m.as_bytes())
PY
fx_check "the template hides its placeholders: none in the HTML part's raw text" \
  bash -c "! grep -q 'href=\"{{link}}' '$FX/msg.eml' && grep -q '^Content-Transfer-Encoding: base64' '$FX/msg.eml'"

py - "$FX/list.csv" "$BOUNDARY" <<'PY'
import csv, sys
b = sys.argv[2]
note = 'a=b =3D =4F\n--' + b + '\n--' + b + '--\n' + '=' * 150 + ' ' + 'y' * 200 + '\nFrom here'
rows = [['email', 'name', 'link', 'note'],
        ['jose@a.test', 'José Müller', 'https://shop.test/o?id=4F&u=3D9', note],
        ['ann@b.test', 'Ann ☃ "Q" Lee', 'https://shop.test/o?id=5&x==', 'plain']]
with open(sys.argv[1], 'w', newline='') as f:
    csv.writer(f).writerows(rows)
PY

job=$(ctl submit --message "$FX/msg.eml" --recipients "$FX/list.csv" --json | py -c 'import json,sys
d = json.load(sys.stdin); assert d["personalised"] is True, d; print(d["job"])')
fx_check "submit: personalised (placeholders found in the base64 part too)" test -n "$job"

timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "qrunner --once exits 0" 0 $?
fx_check_eq "two messages at the sink" 2 "$(fx_pysink_count "$FX/sink")"

fx_check "every part and header decodes (Python's email) to the exact values" py - "$FX/sink/127.0.0.21.mbox" "$FX/list.csv" <<'PY'
import csv, mailbox, sys, email
from email import policy
from email.header import decode_header, make_header
rows = {r['email']: r for r in csv.DictReader(open(sys.argv[2], newline=''))}
seen = set()
for raw in mailbox.mbox(sys.argv[1]):
    data = raw.as_bytes()
    m = email.message_from_bytes(data, policy=policy.default)
    addr = m['To'].addresses[0].addr_spec
    r = rows[addr]
    seen.add(addr)
    name, link, note = r['name'], r['link'], r['note'].replace('\r\n', '\n')
    head = data.split(b'\n\n', 1)[0]
    assert max(b >= 0x80 for b in data) is False, 'raw 8-bit in a message sent without SMTPUTF8'
    for line in head.split(b'\n'):
        assert len(line.rstrip(b'\r')) <= 78, line
    assert m['Subject'] == 'Hallo %s, your offer' % name, m['Subject']
    # An independent decoder for the encoded-words too.
    raw_subject = email.message_from_bytes(data, policy=policy.compat32)['Subject']
    assert str(make_header(decode_header(raw_subject))) == 'Hallo %s, your offer' % name, raw_subject
    assert m['To'].addresses[0].display_name == name, m['To']
    assert m['List-Unsubscribe'] == '<https://shop.test/u?e=%s>' % addr, m['List-Unsubscribe']
    parts = [p for p in m.walk() if not p.is_multipart()]
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    text, html, latin = parts
    assert text['Content-Transfer-Encoding'] == 'quoted-printable'
    assert html['Content-Transfer-Encoding'] == 'base64'
    exp_text = 'Hallo %s,\nyour offer: %s\nnote: %s\nGrüße, the shop %s\n' % (name, link, note, 'x' * 70)
    got = text.get_content().replace('\r\n', '\n')
    assert got == exp_text, (got, exp_text)
    exp_html = '<html><body><p>Hallo %s</p><a href="%s">offer</a><pre>%s</pre></body></html>\n' % (name, link, note)
    got = html.get_content().replace('\r\n', '\n')
    assert got == exp_html, (got, exp_html)
    for p in (text, html):
        for line in p.as_bytes(policy=policy.compat32).split(b'\n'):
            assert len(line.rstrip(b'\r')) <= 76, line
    got = latin.get_content().replace('\r\n', '\n')
    assert got == 'Grüße an %s\n' % name, got
    # Latin-1 holds "José Müller"; not the snowman: that part is re-labelled UTF-8.
    want_cs = 'iso-8859-1' if all(ord(c) < 256 for c in name) else 'utf-8'
    assert latin.get_content_charset() == want_cs, (latin.get_content_charset(), name)
    assert latin.get_filename() == 'gruss.txt'
    # The boundary in a value did not end any part.
    assert len(m.get_payload()) == 2 and len(m.get_payload()[0].get_payload()) == 2
assert seen == set(rows), seen
PY

# ---- sent with SMTPUTF8 (a UTF-8 address in the list): header fields carry raw UTF-8 (RFC 6532)
printf 'email,name,link,note\nzoë@u.test,Zoë ☃,https://shop.test/z?a=1&b=3D,x\n' > "$FX/list8.csv"
job8=$(ctl submit --message "$FX/msg.eml" --recipients "$FX/list8.csv" --name utf8)
fx_check "submit of a list with a UTF-8 address" test -n "$job8"
timeout -k 5 "${QRUNNER_ONCE_TIMEOUT:-60}" "$FX_QRUNNER" -c "$FX/mxlane.conf" --once
fx_check_eq "one message at the SMTPUTF8 sink" 1 "$(fx_pysink_count "$FX/sink8")"
fx_check "its Subject and To: are raw UTF-8, its parts decode to the values" py - "$FX/sink8/127.0.0.22.mbox" <<'PY'
import mailbox, sys, email
from email import policy
(raw,) = list(mailbox.mbox(sys.argv[1]))
data = raw.as_bytes()
head = data.split(b'\n\n', 1)[0]
assert 'Subject: Hallo Zoë ☃, your offer'.encode() in head, head
assert 'To: "Zoë ☃" <zoë@u.test>'.encode() in head, head
m = email.message_from_string(data.decode('utf-8'), policy=policy.default)
text, html, latin = [p for p in m.walk() if not p.is_multipart()]
assert text.get_content().replace('\r\n', '\n').startswith('Hallo Zoë ☃,\nyour offer: https://shop.test/z?a=1&b=3D\n')
assert '<a href="https://shop.test/z?a=1&b=3D">' in html.get_content()
assert latin.get_content_charset() == 'utf-8' and latin.get_content().startswith('Grüße an Zoë ☃')
PY

# ---- a placeholder with no column, hidden in the base64 part: refused, nothing stored
py - "$FX/bad.eml" <<'PY'
import sys
from email.message import EmailMessage
m = EmailMessage()
m['From'] = 'news@shop.test'
m['Subject'] = 'x'
m.set_content('<p>{{nosuchcolumn}}</p>\n', subtype='html', cte='base64')
open(sys.argv[1], 'wb').write(m.as_bytes())
PY
before=$(ctl jobs --json 2>/dev/null | md5sum)
ctl submit --message "$FX/bad.eml" --recipients "$FX/list.csv" >/dev/null 2>"$FX/err"
fx_check_eq "a placeholder without a column in an encoded part: exit 1" 1 $?
fx_check "and the error names it" grep -q 'placeholder {{nosuchcolumn}} has no column' "$FX/err"
fx_check_eq "and nothing is stored" "$before" "$(ctl jobs --json 2>/dev/null | md5sum)"

fx_done
