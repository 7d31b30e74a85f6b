#!/bin/sh
# Boots a lab MN as a real systemd machine: systemd 252 as PID 1 of the node's own PID, UTS,
# IPC and cgroup namespaces, inside its network namespace and its own filesystem view
# (node-view.sh's overlays), with the lab's sshd as one of its services. So the shipped unit
# (deploy/mnha.service), install-ha's systemctl path and the agent's transient units
# (systemd-run) run under a real service manager, which these machines otherwise lack.
#   systemd-node.sh NETNS VIEW_ROOT LAB_STATE_DIR NODE SSHD_CONFIG SSHD_LOG
# Started by test/lab/sshd.ts. The pid it started with ends up as `unshare`'s; the node's
# systemd is that process's only child. First it moves itself into cgroups of its own (one per
# hierarchy, listed in LAB_STATE_DIR/NODE/systemd-cgroups for the teardown), so the node's
# systemd sees those as its cgroup root and two nodes never share a cgroup path.
#
# What a container's systemd would do to the whole machine is masked: kernel settings
# (sysctl, modules, binfmt, remounts), the clock (timesyncd), udev, network set-up
# (ifupdown, networkd: the lab owns the node's interfaces), getty, timers; and the machine's
# own daemons (sshd, MariaDB, PostgreSQL): the lab runs its own. keepalived.service keeps the
# machine's state (enabled by the package), as on a freshly installed MN.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  --stage1) shift; exec /bin/sh "$here/node-view.sh" "$2" /bin/sh "$here/systemd-node.sh" --stage2 "$@" ;;
  --stage2) shift ;;
  *)
    netns=$1 state=$3 node=$4
    name="$(basename "$state")-$node-systemd"
    list="$state/$node/systemd-cgroups"
    mkdir -p "$state/$node"
    : > "$list"
    if [ -f /sys/fs/cgroup/cgroup.procs ]; then
      # cgroup v2 only: one hierarchy.
      dir="/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/$name"
      mkdir -p "$dir" && echo "$dir" >> "$list" && echo $$ > "$dir/cgroup.procs"
    else
      for mounted in /sys/fs/cgroup/*/; do
        mounted=${mounted%/}
        [ -f "$mounted/cgroup.procs" ] || continue
        hierarchy=$(basename "$mounted")
        path=$(awk -F: -v h="$hierarchy" '
          (h == "unified" && $1 == "0") || (h == "systemd" && $2 == "name=systemd") { print $3; exit }
          { n = split($2, c, ","); for (i = 1; i <= n; i++) if (c[i] == h) { print $3; exit } }' /proc/self/cgroup)
        dir="$mounted${path%/}/$name"
        mkdir -p "$dir" && echo "$dir" >> "$list"
        if [ "$hierarchy" = cpuset ]; then
          cat "$(dirname "$dir")/cpuset.cpus" > "$dir/cpuset.cpus"
          cat "$(dirname "$dir")/cpuset.mems" > "$dir/cpuset.mems"
        fi
        echo $$ > "$dir/cgroup.procs"
      done
    fi
    exec ip netns exec "$netns" unshare -m --propagation private -p -f --mount-proc -u -i -C /bin/sh "$here/systemd-node.sh" --stage1 "$@" ;;
esac
state=$3 node=$4 sshd_config=$5 sshd_log=$6

# A fresh /run for systemd, keeping the lab's state dir and the named network namespaces.
hostrun=$(mktemp -d /tmp/mnha-systemd-node.XXXXXX)
mount --rbind /run "$hostrun"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns "$state"
mount --rbind "$hostrun/netns" /run/netns
mount --rbind "$hostrun/${state#/run/}" "$state"
umount -l "$hostrun"
rmdir "$hostrun"
mount -t tmpfs -o mode=1777 tmpfs /tmp
# The node's MariaDB is a lab process started outside this PID namespace, so `ss -p` here
# cannot name it: it is found where Debian's would be (/run/mysqld/mysqld.sock).
if [ -d "$state/$node/mariadb" ]; then
  mkdir -p /run/mysqld
  mount --bind "$state/$node/mariadb" /run/mysqld
fi
# journald keeps the node's journal in /run: /var/log is the machine's, not the node's own.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' > /etc/systemd/journald.conf.d/mnha-lab.conf

units=/etc/systemd/system
for unit in systemd-sysctl.service systemd-modules-load.service systemd-remount-fs.service \
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount systemd-timesyncd.service systemd-pstore.service \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service \
  systemd-udev-settle.service systemd-hwdb-update.service networking.service ifupdown-pre.service \
  systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service \
  getty.target console-getty.service getty@tty1.service serial-getty@.service systemd-logind.service \
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer man-db.timer logrotate.timer systemd-tmpfiles-clean.timer \
  ssh.service sshd.service mariadb.service postgresql.service cron.service rsyslog.service; do
  rm -f "$units/$unit"
  ln -s /dev/null "$units/$unit"
done
cat > "$units/mnha-lab-sshd.service" <<EOF
[Unit]
Description=the mnha lab's sshd of $node

[Service]
ExecStart=/usr/sbin/sshd -D -e -f $sshd_config
RuntimeDirectory=sshd
StandardOutput=append:$sshd_log
StandardError=append:$sshd_log

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$units/multi-user.target.wants"
ln -sf "$units/mnha-lab-sshd.service" "$units/multi-user.target.wants/mnha-lab-sshd.service"
echo "$node" > /etc/hostname
export container=mnha-lab
exec /lib/systemd/systemd --system --unit=multi-user.target
