#!/bin/sh
# install.sh of the mnha suite bundle: installs this unpacked suite into /opt/mnha (or
# MNHA_PREFIX) without network or compiler, and links /usr/local/bin/mnha and zsha2.
# Idempotent: running it again changes nothing; a newer suite goes next to the old one
# (/opt/mnha/releases/<version>) and /opt/mnha/current moves to it.
# An installed systemd unit (/etc/systemd/system/mnha.service, written by install-ha) follows
# the suite: it is replaced by this suite's unit when it is the unit some installed suite
# shipped (a new release's sandbox or dependency fix lands with the upgrade; a rollback takes
# the old unit back; a rerun after an interruption finishes the job), and left alone, with a
# warning, when it is no suite's (edited by hand). Drop-ins
# (mnha.service.d/) are never touched: local changes belong there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${MNHA_PREFIX:-/opt/mnha}
bindir=${MNHA_BINDIR:-/usr/local/bin}
version=$(cat "$here/VERSION")
release="$prefix/releases/$version"

if [ "$(id -u)" != 0 ]; then echo "install.sh: run it as root" >&2; exit 2; fi
if [ ! -f "$release/.complete" ]; then
  rm -rf "$release.partial"
  mkdir -p "$release.partial"
  cp -a "$here/." "$release.partial/"
  touch "$release.partial/.complete"
  rm -rf "$release"
  mv "$release.partial" "$release"
fi
ln -sfn "releases/$version" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
# (A test build's fault switch goes on the next line: bundle.sh --fail-install-if.)
: test-fault-hook
mkdir -p "$bindir"
ln -sfn "$prefix/current/bin/mnha" "$bindir/mnha"
ln -sfn "$prefix/current/bin/zsha2" "$bindir/zsha2"
mkdir -p /etc/mnha /var/lib/mnha
chmod 700 /etc/mnha /var/lib/mnha

unit=/etc/systemd/system/mnha.service
shipped="$release/systemd/mnha.service"
shipped_by_a_suite() {
  for candidate in "$prefix"/releases/*/systemd/mnha.service; do
    if [ -f "$candidate" ] && cmp -s "$candidate" "$1"; then return 0; fi
  done
  return 1
}
if [ -f "$unit" ] && ! cmp -s "$shipped" "$unit"; then
  if shipped_by_a_suite "$unit"; then
    cp "$shipped" "$unit.new"
    chmod 644 "$unit.new"
    mv -f "$unit.new" "$unit"
    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
    echo "$unit replaced by suite $version's unit (the agent uses it from its next start)"
  else
    echo "warning: $unit is not the unit of any installed suite (edited by hand?): left as it is. Suite $version's unit is $shipped: compare them (diff $shipped $unit), put local changes in a drop-in (systemctl edit mnha), then copy it over and run systemctl daemon-reload"
  fi
fi

# Prove the runtime and the native addon load here, before anyone relies on them.
"$prefix/current/node/bin/node" -e '
  const Database = require(process.argv[1]);
  const db = new Database(":memory:");
  if (db.prepare("select 41 + 1 as n").get().n !== 42) process.exit(1);
' "$(find "$prefix/current/app/node_modules/.pnpm" -maxdepth 1 -name 'better-sqlite3@*' | head -n 1)/node_modules/better-sqlite3"
echo "mnha suite $version installed in $release ($bindir/mnha, $bindir/zsha2)"
