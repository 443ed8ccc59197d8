#!/bin/sh
# Run a command as a "host" of the multi-host harness (cluster/multihost.py), inside a fresh mount namespace
# (`unshare --mount --uts --pid --fork`, called by the harness inside the host's network namespace):
#   host_root.sh HOST_DIR RO_PATHS HOSTNAME -- COMMAND...
# The command sees a root file system of its own: the system folders (/usr, /etc, ...) and RO_PATHS (the
# code and the Python env, colon-separated) read-only, and the host's own writable folders from HOST_DIR
# (tmp -> /tmp, home -> /home/lab, lab -> /var/lab, pg -> /var/lib/postgresql/lab: the head's PostgreSQL) plus a private /dev/shm (Ray's object store). Nothing
# else of the machine, and nothing of the other hosts, is visible.
set -eu
host_dir=$1 ro_paths=$2
hostname "$3"  # its own UTS namespace: Ray names nodes by host
shift 4  # HOST_DIR RO_PATHS HOSTNAME --
root=$host_dir/.root
mkdir -p "$root"
mount -t tmpfs -o mode=755 root "$root"  # in this mount namespace only: gone with its last process
for name in usr etc opt; do
  [ -d "/$name" ] || continue
  mkdir -p "$root/$name" && mount --rbind -o ro "/$name" "$root/$name" && mount -o remount,bind,ro "$root/$name"
done
for name in bin sbin lib lib32 lib64 libx32; do  # merged /usr: links; else read-only folders
  if [ -L "/$name" ]; then ln -s "$(readlink "/$name")" "$root/$name"
  elif [ -d "/$name" ]; then mkdir -p "$root/$name" && mount --bind -o ro "/$name" "$root/$name" \
       && mount -o remount,bind,ro "$root/$name"; fi
done
mkdir -p "$root/proc" "$root/sys" "$root/dev"
mount -t proc proc "$root/proc"  # this host's processes only (its own PID namespace)
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"  # the host's own shared memory
old_ifs=$IFS IFS=:
for path in $ro_paths; do  # the code and the env, at the same paths as on the machine
  mkdir -p "$root$path" && mount --bind "$path" "$root$path" && mount -o remount,bind,ro "$root$path"
done
IFS=$old_ifs
for pair in tmp:/tmp home:/home/lab lab:/var/lab pg:/var/lib/postgresql/lab; do
  mkdir -p "$host_dir/${pair%%:*}" "$root${pair#*:}"
  mount --bind "$host_dir/${pair%%:*}" "$root${pair#*:}"
done
chmod 1777 "$root/tmp"
exec chroot "$root" /usr/bin/env HOME=/home/lab LAB_HOME=/var/lab TMPDIR=/tmp "$@"
