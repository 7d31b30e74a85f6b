#!/bin/sh
# Gives the command its own view of a management node's filesystem: overlays on /etc,
# /var/lib, /opt and /usr/local whose changes land in the node's lab state dir (run inside
# `unshare -m --propagation private`, so the machine never sees them). Then execs the command.
#   node-view.sh STATE_ROOT COMMAND ARGS...
set -eu
root=$1
shift
for pair in etc:/etc var-lib:/var/lib opt:/opt usr-local:/usr/local; do
  name=${pair%%:*}
  target=${pair#*:}
  mkdir -p "$root/$name/upper" "$root/$name/work"
  mount -t overlay overlay -o "lowerdir=$target,upperdir=$root/$name/upper,workdir=$root/$name/work" "$target"
done
mkdir -p /run/mnha
mount -t tmpfs -o mode=0755 tmpfs /run/mnha
exec "$@"
