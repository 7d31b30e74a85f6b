#!/usr/bin/env bash
# Installs everything mnha's build, lab and tests need on a fresh Debian 12 machine, then
# builds. Safe to run again: it installs only what is missing. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: run as root (the lab creates network namespaces and runs Keepalived)" >&2
  exit 1
fi

# command -> Debian package
declare -A wanted=(
  [keepalived]=keepalived
  [ip]=iproute2
  [ping]=iputils-ping
  [arping]=iputils-arping
  [nft]=nftables
  [pgrep]=procps
  [flock]=util-linux
  [bash]=bash
  # The database, SSH, file sync and ISO tooling the lab's real MNs use.
  [mariadbd]=mariadb-server
  [mariadb]=mariadb-client
  [mariadb-backup]=mariadb-backup
  [sshd]=openssh-server
  [ssh]=openssh-client
  [rsync]=rsync
  [xorriso]=xorriso
  [stress-ng]=stress-ng
  # libfaketime: the lease guard's test runs it under a wall clock that jumps ahead.
  [faketime]=faketime
  # systemctl (offline, no systemd as PID 1): the tests of keepalived.service's mask, and install-ha in the lab.
  # systemd also boots the lab's systemd MNs (test/lab/systemd-node.sh), whose service actions
  # need the D-Bus system bus (systemd-run --wait): dbus is only a recommendation of systemd's.
  [systemctl]=systemd
  [dbus-daemon]=dbus
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start their services on this machine (MariaDB, sshd): the lab runs its
  # own instances inside its namespaces. policy-rc.d says "no" to every start while we install.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$created_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# The distribution's keepalived service must not run beside the agents' own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet keepalived 2>/dev/null; then
  systemctl stop keepalived || true
fi

if ! command -v pnpm >/dev/null 2>&1; then
  echo "bootstrap: installing pnpm"
  npm install -g pnpm@10 >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
pnpm run build
