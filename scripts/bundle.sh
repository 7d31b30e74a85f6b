#!/usr/bin/env bash
# Builds the offline suite bundle: dist/mnha-suite-<version>-linux-x64.tar.gz with the Node
# runtime (this machine's node binary), the built agent, its production dependencies with
# the compiled better-sqlite3 addon, the systemd unit, the mnha and zsha2 commands and
# install.sh. Installing it needs no network and no compiler.
#   scripts/bundle.sh [--out DIR] [--suite-version V] [--protocol-versions LIST] [--fail-install-if PATH] [--fail-agent-start-if PATH]
# Needs the build (pnpm build) and pnpm's store (the dependencies already installed).
#
# Test builds (never shipped; suite.json says "testBuild": true and `mnha version` says so):
#   --suite-version V          the suite calls itself V (the bundle's name, VERSION, the agent's
#                              version) instead of package.json's: the "next version" of an upgrade test
#   --protocol-versions 2,3    the peer protocol versions it offers (default: the code's own);
#                              must keep every version the code speaks; a version above the code's
#                              newest is spoken with its newest framing (proves the negotiation)
#   --fail-install-if PATH     its install.sh fails (after switching /opt/mnha/current) while PATH
#                              exists on the node: the fault switch of the upgrade-ha lab test
#   --fail-agent-start-if PATH its `mnha run-detached-agent` (how the agent is started without
#                              systemd) fails while PATH exists: the agent-restart fault switch
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/dist"
suite_version=""
protocol_versions=""
fail_install_if=""
fail_agent_start_if=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --suite-version) suite_version=$2; shift 2 ;;
    --protocol-versions) protocol_versions=$2; shift 2 ;;
    --fail-install-if) fail_install_if=$2; shift 2 ;;
    --fail-agent-start-if) fail_agent_start_if=$2; shift 2 ;;
    *) echo "bundle: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
if [[ -n "$suite_version" ]]; then
  [[ "$suite_version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([.+-][0-9A-Za-z.]+)?$ ]] || { echo "bundle: --suite-version $suite_version is not a version (X.Y.Z)" >&2; exit 2; }
  version=$suite_version
fi
for fault in "$fail_install_if" "$fail_agent_start_if"; do
  if [[ -n "$fault" && ! "$fault" =~ ^/[A-Za-z0-9._/-]+$ ]]; then echo "bundle: a fault switch needs an absolute path of letters, digits, . _ - /" >&2; exit 2; fi
done
test_build=$([[ -n "$suite_version$protocol_versions$fail_install_if$fail_agent_start_if" ]] && echo true || echo false)
arch=$(node -p 'process.arch')
[[ "$arch" == "x64" ]] || { echo "bundle: this machine is $arch; the bundle is for linux-x64" >&2; exit 2; }
name="mnha-suite-$version-linux-x64"
[[ -f "$repo/packages/agent/dist/cli/main.js" ]] || { echo "bundle: the agent is not built; run pnpm build first" >&2; exit 2; }

# One bundle at a time on a machine (two lab test files may want one at once): `pnpm deploy`
# hard-links files from the shared pnpm store, and a second deploy running at the same time
# rewrites some of them while tar reads them ("file changed as we read it").
mkdir -p "$repo/dist"
exec 9>"$repo/dist/.bundle.lock"
flock -w 900 9 || { echo "bundle: another bundle.sh has held $repo/dist/.bundle.lock for 15 minutes; is one stuck?" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/$name"
mkdir -p "$root/bin" "$root/node/bin" "$root/systemd"

# Production dependencies only, workspace packages copied in (not linked), from the local store.
(cd "$repo" && pnpm --filter @mnha/agent deploy --prod --prefer-offline --legacy "$root/app" >/dev/null)
rm -rf "$root/app/src" "$root/app/test" "$root/app/tsconfig.json" "$root/app/tsconfig.tsbuildinfo" # app/scripts stays: the lease guard and check run from there
# pnpm leaves a link back to the workspace's own agent package: it must not ship (it points
# outside the bundle), and nothing below may follow a link (rm -rf through one would
# delete the workspace's sources).
rm -f "$root/app/node_modules/.pnpm/node_modules/@mnha/agent"
while IFS= read -r pkg; do
  case "$(readlink -f "$pkg")" in "$root"/*) ;; *) echo "bundle: $pkg points outside the bundle" >&2; exit 1 ;; esac
  rm -rf "${pkg:?}/src" "${pkg:?}/test" "${pkg:?}/tsconfig.json" "${pkg:?}/tsconfig.tsbuildinfo"
done < <(find "$root/app/node_modules/.pnpm" -mindepth 4 -maxdepth 4 -type d -path '*/@mnha+*/node_modules/@mnha/*')
# Every link in the bundle must stay inside it.
while IFS= read -r link; do
  case "$(readlink -f "$link")" in "$root"/*) ;; *) echo "bundle: the link $link points outside the bundle ($(readlink "$link"))" >&2; exit 1 ;; esac
done < <(find "$root" -type l)
# The addon's build intermediates are not needed at run time (and are hard links into the shared
# pnpm store, which a concurrent rebuild may be rewriting while tar reads them).
find "$root/app/node_modules/.pnpm" -type d -path '*better-sqlite3/build/Release/obj.target' -prune -exec rm -rf {} +
addon=$(find "$root/app/node_modules/.pnpm" -path '*better-sqlite3/build/Release/better_sqlite3.node' | head -n 1)
[[ -n "$addon" ]] || { echo "bundle: the compiled better-sqlite3 addon is missing from the deployed dependencies" >&2; exit 1; }

cp "$(node -p 'process.execPath')" "$root/node/bin/node"
# The offered versions: the code's own, or the test build's list (which must keep all of them).
protocols=$(node -e '
  import(process.argv[1]).then((m) => {
    const own = [...m.PROTOCOL_VERSIONS];
    const asked = process.argv[2] === "" ? own : process.argv[2].split(",").map((v) => (/^[1-9][0-9]{0,3}$/.test(v.trim()) ? Number(v) : NaN));
    if (asked.some((v) => Number.isNaN(v))) { console.error(`bundle: --protocol-versions ${process.argv[2]}: a comma-separated list of versions, such as 2,3`); process.exit(2); }
    const missing = own.filter((v) => !asked.includes(v));
    if (missing.length > 0) { console.error(`bundle: --protocol-versions must keep every version the code speaks (${own.join(",")}); missing ${missing.join(",")}`); process.exit(2); }
    console.log(JSON.stringify([...new Set(asked)].sort((a, b) => a - b)));
  });' "$repo/packages/protocol/dist/index.js" "$protocol_versions")
protocol=$(node -p 'Math.max(...JSON.parse(process.argv[1]))' "$protocols")
git_tree=$(git -C "$repo" rev-parse 'HEAD^{tree}' 2>/dev/null || echo unknown)
dirty=$([[ -z "$(git -C "$repo" status --porcelain 2>/dev/null)" ]] && echo false || echo true)
cat > "$root/app/suite.json" <<JSON
{ "suite": "$version", "protocol": $protocol, "protocolVersions": $protocols, "node": "$(node -p 'process.version')", "platform": "linux-x64", "gitTree": "$git_tree", "dirty": $dirty, "testBuild": $test_build }
JSON
# The agent reports its package's version: a test build's own version goes there too.
node -e '
  const fs = require("node:fs");
  const pkg = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  if (pkg.version !== process.argv[2]) { pkg.version = process.argv[2]; fs.writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2) + "\n"); }
' "$root/app/package.json" "$version"
echo "$version" > "$root/VERSION"

for command in mnha zsha2; do
  cat > "$root/bin/$command" <<'SH'
#!/bin/sh
# The suite's own Node runtime runs the CLI; the program name (mnha or zsha2) is this file's name.
# MNHA_NODE_OPTIONS: Node.js flags (the systemd unit sets V8 heap flags for the agent), split on spaces.
here=$(dirname "$(readlink -f "$0")")
: test-agent-fault-hook
exec "$here/../node/bin/node" ${MNHA_NODE_OPTIONS:-} "$here/../app/bin/$(basename "$0").js" "$@"
SH
  if [[ -n "$fail_agent_start_if" ]]; then
    sed -i "s#^: test-agent-fault-hook\$#if [ \"\${1:-}\" = run-detached-agent ] \&\& [ -e '$fail_agent_start_if' ]; then echo \"mnha: this test build is told not to start its agent ($fail_agent_start_if exists)\" >\&2; exit 1; fi#" "$root/bin/$command"
    grep -qF "told not to start" "$root/bin/$command" || { echo "bundle: the agent fault hook marker is missing" >&2; exit 1; }
  else
    sed -i '/^: test-agent-fault-hook$/d' "$root/bin/$command"
  fi
  chmod 755 "$root/bin/$command"
done
mkdir -p "$root/app/bin"
ln -s ../dist/cli/main.js "$root/app/bin/mnha.js"
ln -s ../dist/cli/main.js "$root/app/bin/zsha2.js"

sed 's#^ExecStart=/usr/bin/mnha #ExecStart=/usr/local/bin/mnha #' "$repo/deploy/mnha.service" > "$root/systemd/mnha.service"
if [[ -n "$fail_install_if" ]]; then
  # The test build's fault switch replaces the marker line of install.sh.
  sed "s#^: test-fault-hook\$#if [ -e '$fail_install_if' ]; then echo \"install.sh: this test build is told to fail ($fail_install_if exists)\" >\&2; exit 1; fi#" "$repo/scripts/suite-install.sh" > "$root/install.sh"
  grep -qF "told to fail" "$root/install.sh" || { echo "bundle: the fault hook marker is missing from suite-install.sh" >&2; exit 1; }
else
  cp "$repo/scripts/suite-install.sh" "$root/install.sh"
fi
chmod 755 "$root/install.sh"

mkdir -p "$out"
tar -C "$work" -czf "$out/$name.tar.gz.tmp" "$name"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
