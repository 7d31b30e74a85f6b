#!/usr/bin/env bash
# Builds the offline suite bundle: dist/mnha-suite-<version>-linux-x64.tar.gz with the Node
# runtime (this machine's node binary), the built agent, its production dependencies with
# the compiled better-sqlite3 addon, the systemd unit, the mnha and zsha2 commands and
# install.sh. Installing it needs no network and no compiler.
#   scripts/bundle.sh [--out DIR]
# Needs the build (pnpm build) and pnpm's store (the dependencies already installed).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/dist"
if [[ "${1:-}" == "--out" ]]; then out=$2; fi
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
arch=$(node -p 'process.arch')
[[ "$arch" == "x64" ]] || { echo "bundle: this machine is $arch; the bundle is for linux-x64" >&2; exit 2; }
name="mnha-suite-$version-linux-x64"
[[ -f "$repo/packages/agent/dist/cli/main.js" ]] || { echo "bundle: the agent is not built; run pnpm build first" >&2; exit 2; }

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
addon=$(find "$root/app/node_modules/.pnpm" -path '*better-sqlite3/build/Release/better_sqlite3.node' | head -n 1)
[[ -n "$addon" ]] || { echo "bundle: the compiled better-sqlite3 addon is missing from the deployed dependencies" >&2; exit 1; }

cp "$(node -p 'process.execPath')" "$root/node/bin/node"
protocol=$(node -e 'import(process.argv[1]).then((m) => console.log(Math.max(...m.PROTOCOL_VERSIONS)))' "$repo/packages/protocol/dist/index.js")
git_tree=$(git -C "$repo" rev-parse 'HEAD^{tree}' 2>/dev/null || echo unknown)
dirty=$([[ -z "$(git -C "$repo" status --porcelain 2>/dev/null)" ]] && echo false || echo true)
cat > "$root/app/suite.json" <<JSON
{ "suite": "$version", "protocol": $protocol, "node": "$(node -p 'process.version')", "platform": "linux-x64", "gitTree": "$git_tree", "dirty": $dirty }
JSON
echo "$version" > "$root/VERSION"

for command in mnha zsha2; do
  cat > "$root/bin/$command" <<'SH'
#!/bin/sh
# The suite's own Node runtime runs the CLI; the program name (mnha or zsha2) is this file's name.
# MNHA_NODE_OPTIONS: Node.js flags (the systemd unit sets V8 heap flags for the agent), split on spaces.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../node/bin/node" ${MNHA_NODE_OPTIONS:-} "$here/../app/bin/$(basename "$0").js" "$@"
SH
  chmod 755 "$root/bin/$command"
done
mkdir -p "$root/app/bin"
ln -s ../dist/cli/main.js "$root/app/bin/mnha.js"
ln -s ../dist/cli/main.js "$root/app/bin/zsha2.js"

sed 's#^ExecStart=/usr/bin/mnha #ExecStart=/usr/local/bin/mnha #' "$repo/deploy/mnha.service" > "$root/systemd/mnha.service"
cp "$repo/scripts/suite-install.sh" "$root/install.sh"
chmod 755 "$root/install.sh"

mkdir -p "$out"
tar -C "$work" -czf "$out/$name.tar.gz.tmp" "$name"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
