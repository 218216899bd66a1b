#!/bin/bash
# deps.sh: installs (as root, on Debian 12) every package mxlane needs to build, test and demo.
set -euo pipefail
PACKAGES=(
  # build
  g++ make autoconf automake libtool pkg-config
  libmilter-dev libssl-dev libc-ares-dev libboost1.81-dev libdb++-dev libcppunit-dev libpcre2-dev libopendkim-dev libspf2-dev
  # tests and demo: real MTAs, milter driver, DNS, sinks, mail-log reader
  postfix miltertest dnsmasq-base swaks python3-aiosmtpd pflogsumm dnsutils openssl
  python3-dkim python3-nacl python3-prometheus-client curl
  iproute2 util-linux procps
  # crash tests (db5.3_verify) and fuzzers (clang, libFuzzer's runtime; GMime, the reference the
  # mime_gmime target checks mxlane's MIME encoders against)
  db5.3-util clang libclang-rt-14-dev libgmime-3.0-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Without this the postfix package asks which configuration to install and hangs a script.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package may start the machine's own Postfix; mxlane's tests run private instances
# and never use it, so leave the system service as the admin had it.
echo "deps: done"
