#!/bin/bash
# install_layout: make install DESTDIR lays out programs, man pages, sample config and units;
# the installed daemons started as root drop to mail_owner with the queue and socket modes documented.
. "$(dirname "$0")/../fixtures/lib.sh"
fx_init install_layout
fx_need_built
fx_need "$FX_PYTHON" setpriv
B=$MXLANE_BUILDDIR
STAGE=$FX/stage

# ---- make install DESTDIR (the build's own make; the test may run under make check)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$B" install DESTDIR="$STAGE" > "$FX/install.out" 2>&1
rc=$?
fx_register_log "$FX/install.out"
fx_check_eq "make install DESTDIR succeeds" 0 "$rc"

# installdir NAME: a directory as configured (sbindir, mandir, ...), from the build's Makefile
installdir() {
    printf 'print-dir:\n\t@echo $(%s)\n' "$1" |
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$B/conf" -f Makefile -f - print-dir
}
SBIN=$STAGE$(installdir sbindir)
MAN=$STAGE$(installdir mandir)
ETC=$STAGE$(installdir sysconfdir)/mxlane
UNITS=$STAGE$(installdir systemdsystemunitdir)

for p in mxlane-milter mxlane-qrunner mxlanectl; do
    fx_check "$p installed in sbin" test -x "$SBIN/$p"
    fx_check "$p(8) installed" test -s "$MAN/man8/$p.8"
done
fx_check "mxlane.conf(5) installed" test -s "$MAN/man5/mxlane.conf.5"
for f in mxlane.conf destinations.example reply_rules providers postfix-main.cf.snippet postfix-master.cf.snippet sendmail.mc.snippet; do
    fx_check "sample $f installed" test -s "$ETC/$f"
done
fx_check "the sample mxlane.conf sets nothing (every parameter at its default)" \
    test -z "$("$SBIN/mxlanectl" -c "$ETC/mxlane.conf" config -n)"
if command -v groff >/dev/null; then
    for page in "$MAN"/man5/*.5 "$MAN"/man8/*.8; do
        fx_check "$(basename "$page") formats without groff warnings" \
            test -z "$(groff -ww -man -Tutf8 -z "$page" 2>&1)"
    done
else
    fx_skip_part "man pages without groff warnings: groff is not installed"
fi

# ---- mxlane.conf(5): every parameter, its default and its doc line, as the
# installed sample (kept in step with the parameter table) has them:
#   # doc line
#   #name = default
plain() { sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\&//g' "$1"; }
plain "$MAN/man5/mxlane.conf.5" > "$FX/conf5.txt"
awk '/^#[a-zA-Z_]+ =/ { sub(/^#/, ""); print; print doc } { doc = $0 }' "$ETC/mxlane.conf" |
    sed 's/^# //' > "$FX/sample.txt"
missing= n=0
while IFS= read -r line && IFS= read -r doc; do
    name=${line%% =*}
    value=${line#"$name ="}
    value=${value# }
    [ -n "$value" ] && want="$name (default: $value)" || want="$name (default: empty)"
    got=$(grep -A1 -xF -- "$want" "$FX/conf5.txt" | sed -n 2p)
    if [ -z "$got" ]; then missing+=" $name(default)"
    # (the sample adds the choices of a choice parameter in parentheses)
    elif [ "$got" != "$doc." ] && [[ $doc != "${got%.} ("* ]]; then missing+=" $name(doc)"
    fi
    n=$((n + 1))
done < "$FX/sample.txt"
printf '' > "$FX/empty.conf"
nparams=$("$SBIN/mxlanectl" -c "$FX/empty.conf" config | wc -l)
fx_check_eq "the sample lists every parameter mxlanectl config knows" "$nparams" "$n"
fx_check "mxlane.conf(5) gives each its default and doc${missing:+ (wrong:$missing)}" test -z "$missing"
fx_check_eq "mxlane.conf(5) lists each parameter once" "$nparams" "$(grep -c ' (default: ' "$FX/conf5.txt")"

# ---- systemd units
m=$UNITS/mxlane-milter.service q=$UNITS/mxlane-qrunner.service
fx_check "units installed" test -s "$m" -a -s "$q"
fx_check "milter unit starts the installed program" grep -qx "ExecStart=$(installdir sbindir)/mxlane-milter" "$m"
fx_check "qrunner unit starts the installed program" grep -qx "ExecStart=$(installdir sbindir)/mxlane-qrunner" "$q"
fx_check "both detach and log to syslog (Type=forking, no -f)" \
    bash -c "grep -qx Type=forking '$m' && grep -qx Type=forking '$q' && ! grep -q '^ExecStart=.* -f' '$m' '$q'"
fx_check "milter: /run/mxlane, up before the MTA" \
    bash -c "grep -qx RuntimeDirectory=mxlane '$m' && grep -q '^Before=.*postfix.service' '$m'"
fx_check "qrunner reloads on SIGHUP" grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$q"
if command -v systemd-analyze >/dev/null; then
    for u in "$m" "$q"; do
        # ExecStart names the configured path, which the stage does not hold: only syntax counts here
        out=$(systemd-analyze verify "$u" 2>&1 | grep -v -e 'is not executable' -e 'No such file' -e "Command 'man " || true)
        fx_check "$(basename "$u") passes systemd-analyze verify" test -z "$out"
    done
else
    fx_skip_part "systemd-analyze verify of the units: systemd-analyze is not installed"
fi

# ---- privilege drop: the installed daemons started as root, mail_owner = nobody
OWNER=nobody
OUID=$(id -u $OWNER) OGID=$(id -g $OWNER)
CONF=$FX/priv.conf
fx_write_conf "$CONF" "mail_owner=$OWNER" "queue_directory=$FX/spool/queue" \
    "milter_socket=unix:$FX/run/mxlane/milter.sock" "log_file=$FX/priv.log" delivery_mode=relay
mkdir -p "$FX/spool" "$FX/run"
rmdir "$FX/spool/queue" 2>/dev/null
SOCK=$FX/run/mxlane/milter.sock

# One after the other: the milter has opened (created) the store once loop.key is there.
"$SBIN/mxlane-milter" -c "$CONF"; rc_m=$?
fx_register_log "$FX/priv.log"
fx_check "the milter created the store (loop.key)" fx_wait_for -t 10 test -e "$FX/spool/queue/loop.key"
"$SBIN/mxlane-qrunner" -c "$CONF"; rc_q=$?
fx_check_eq "the milter detaches with status 0" 0 "$rc_m"
fx_check_eq "the qrunner detaches with status 0" 0 "$rc_q"
fx_check "the qrunner wrote its pid file" fx_wait_for -t 10 test -s "$FX/spool/queue/qrunner.pid"
MPID=$(pgrep -o -f -- "mxlane-milter -c $CONF\$")
QPID=$(head -n 1 "$FX/spool/queue/qrunner.pid" 2>/dev/null)
for pid in $MPID $QPID; do fx_register_pid "$pid"; done
fx_check "the milter is running" test -n "$MPID" -a -d "/proc/${MPID:-0}"
fx_check "the qrunner is running" test -n "$QPID" -a -d "/proc/${QPID:-0}"

ids() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status" 2>/dev/null; }  # space-separated
for who in milter:$MPID qrunner:$QPID; do
    pid=${who#*:}
    fx_check_eq "$who: real, effective, saved, fs uid are $OWNER's" "$OUID $OUID $OUID $OUID" "$(ids "$pid" Uid)"
    fx_check_eq "$who: gids are $OWNER's group" "$OGID $OGID $OGID $OGID" "$(ids "$pid" Gid)"
    fx_check_eq "$who: no supplementary group but that one" "$OGID" "$(ids "$pid" Groups | tr -d ' ')"
done

fx_check_eq "queue_directory created 0750, $OWNER's" "750 $OWNER" "$(stat -c '%a %U' "$FX/spool/queue")"
fx_check "everything in the queue is $OWNER's" test -z "$(find "$FX/spool/queue" ! -user $OWNER -o ! -group "$OGID")"
fx_check "the store is there (meta.db)" test -s "$FX/spool/queue/meta.db"
fx_check_eq "loop.key is 0600, $OWNER's" "600 $OWNER" "$(stat -c '%a %U' "$FX/spool/queue/loop.key")"
fx_check_eq "the socket is 0660, $OWNER and its group" "660 $OUID $OGID" "$(stat -c '%a %u %g' "$SOCK")"
fx_check_eq "the socket directory the milter made is $OWNER's" "755 $OWNER" "$(stat -c '%a %U' "$FX/run/mxlane")"
fx_check "log_file written" grep -q 'mxlane/milter\[.*starting: listening' "$FX/priv.log"

# connect_as USER [GROUPS]: can USER (with supplementary GROUPS) connect to the milter socket?
connect_as() {
    local groups=${2:+--groups $2}
    [ -n "$2" ] || groups=--clear-groups
    setpriv --reuid "$1" --regid "$1" $groups "$FX_PYTHON" -c \
        'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])' "$SOCK" 2>/dev/null
}
cannot_connect_as() { ! connect_as "$@"; }
if id postfix >/dev/null 2>&1; then
    fx_check "postfix in $OWNER's group (adduser postfix <group>) connects" connect_as postfix "$OGID"
    fx_check "postfix outside the group cannot" cannot_connect_as postfix
else
    fx_skip_part "socket access of user postfix: there is no user postfix"
fi
fx_check "another user (daemon) cannot connect" cannot_connect_as daemon

# mxlanectl run as root works as the queue's owner: what it adds stays usable by the daemons
printf 'From: a@sender.test\nSubject: hi\n\nhello\n' > "$FX/msg.txt"
printf 'address\nann@a.test\n' > "$FX/rcpt.csv"
chmod 644 "$FX/msg.txt" "$FX/rcpt.csv"
fx_check "mxlanectl submit as root" "$SBIN/mxlanectl" -c "$CONF" submit --message "$FX/msg.txt" --recipients "$FX/rcpt.csv" --name layout
fx_check "mxlanectl jobs as root" "$SBIN/mxlanectl" -c "$CONF" jobs
fx_check "nothing in the queue became root's" test -z "$(find "$FX/spool/queue" ! -user $OWNER)"

# stop: the milter removes its socket from its own directory
# Built on libmilter, the milter notices SIGTERM only at its next 5 s poll: give it time to clean up.
kill -TERM "$MPID" "$QPID" 2>/dev/null
fx_check "the milter stops on SIGTERM" fx_wait_for -t 15 bash -c "! kill -0 $MPID 2>/dev/null"
fx_stop_pid "$MPID" "$QPID"
fx_check "the milter removed its socket when it stopped" test ! -e "$SOCK"

# ---- refusals, one line naming the parameter
printf 'mail_owner = no_such_user_mxl\nqueue_directory = %s/q2\nmilter_socket = unix:%s/q2.sock\n' "$FX" "$FX" > "$FX/bad.conf"
for p in mxlane-milter mxlane-qrunner; do
    err=$("$SBIN/$p" -c "$FX/bad.conf" -f 2>&1 >/dev/null); rc=$?
    fx_check "$p: unknown mail_owner is fatal" test "$rc" -ne 0
    fx_check "$p: the message names mail_owner and the user" grep -q "mail_owner = no_such_user_mxl: no such user" <<<"$err"
    fx_check "$p: and how to add it, as the README does" \
        grep -q "adduser --system --group --home $FX/q2 --no-create-home no_such_user_mxl" <<<"$err"
    fx_check_eq "$p: in one line" 1 "$(printf '%s\n' "$err" | wc -l)"
done
sed -i 's/^mail_owner = .*/mail_owner = root/' "$FX/bad.conf"
for p in mxlane-milter mxlane-qrunner; do
    err=$("$SBIN/$p" -c "$FX/bad.conf" -f 2>&1 >/dev/null); rc=$?
    fx_check "$p: mail_owner = root is refused" bash -c "[ $rc -ne 0 ] && grep -q 'mail_owner = root: must not be root' <<<'$err'"
done
fx_check "nothing was created for a refused mail_owner" test ! -e "$FX/q2"

# ---- an admin's mxlane.conf survives the next install; uninstall keeps it too
fx_check "each install leaves this version's sample as mxlane.conf.default" \
    cmp -s "$ETC/mxlane.conf" "$ETC/mxlane.conf.default"
echo "max_connections = 42" >> "$ETC/mxlane.conf"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$B" install DESTDIR="$STAGE" > "$FX/reinstall.out" 2>&1
fx_check_eq "a second make install succeeds" 0 "$?"
fx_check "a second make install keeps the admin's mxlane.conf" grep -qx "max_connections = 42" "$ETC/mxlane.conf"
fx_check "and says so" grep -q "kept .*mxlane.conf; this version's sample is mxlane.conf.default" "$FX/reinstall.out"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$B" uninstall DESTDIR="$STAGE" >> "$FX/install.out" 2>&1
fx_check_eq "make uninstall keeps only the changed mxlane.conf" "$ETC/mxlane.conf" "$(find "$STAGE" -type f)"

# ---- uninstall leaves nothing of ours once the config is the sample again
cp "$MXLANE_SRCDIR/conf/mxlane.conf" "$ETC/mxlane.conf"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$B" uninstall DESTDIR="$STAGE" >> "$FX/install.out" 2>&1
fx_check "make uninstall removes every file" test -z "$(find "$STAGE" -type f)"

# ---- configure: its summary shows paths expanded; plain make leaves bench/ alone (make bench, make check build it)
mkdir -p "$FX/conf-build"
(cd "$FX/conf-build" && "$MXLANE_SRCDIR/configure" --prefix=/opt/mxl > configure.out 2>&1)
fx_check_eq "a second configure succeeds" 0 "$?"
fx_register_log "$FX/conf-build/configure.out"
fx_check "the summary shows the config file as installed" grep -q "(config: /opt/mxl/etc/mxlane/mxlane.conf)" "$FX/conf-build/configure.out"
fx_check "and the unit directory" grep -q "systemd units: /opt/mxl/lib/systemd/system$" "$FX/conf-build/configure.out"
fx_check "no unexpanded \${prefix} in the summary" bash -c "! sed -n '/configured\$/,\$p' '$FX/conf-build/configure.out' | grep -qF '\${'"
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n -C "$FX/conf-build/bench" "$@" 2>/dev/null; }
fx_check "plain make does not build bench/milter_floor" bash -c "$(declare -f mk); FX='$FX'; ! mk all | grep -q milter_floor"
fx_check "make check builds it" bash -c "$(declare -f mk); FX='$FX'; mk check | grep -q milter_floor"
fx_check "make bench builds it" bash -c "$(declare -f mk); FX='$FX'; mk bench | grep -q milter_floor"
fx_done
