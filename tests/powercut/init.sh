#!/bin/busybox sh
# /init of the power-cut VM's initramfs (tests/powercut.rs builds it and reads the serial
# console), on the x86 VM and on the emulated Pi 3B alike. The spool lives on an ext4 disk
# (mb.disk: /dev/vda, or the Pi's SD card /dev/mmcblk0), the same image every boot; the host
# pulls the plug (kills QEMU) whenever it likes. Kernel command line: mb.epoch=SECONDS (the
# host's clock: the VM has none worth having), mb.net=eth0|usb0, mb.mode=run|final and
# mb.expect=MAILS (final).
#   @@ boot N            the disk is mounted (N counts boots on this disk)
#   @@ start             the daemon is being started (sled opens, recovers, snapshots)
#   @@ exited rc=N       the daemon ended by itself: a boot that needed something
#   @@ peak N kB         (final) the daemon's peak RSS (VmHWM) once MAILS are delivered
#   @@ memory at ...     (final) RSS, its anonymous and file parts and threads, sampled each second
#   @@ stopped rc=N      (final) the daemon delivered MAILS and was stopped with SIGTERM
#   @@ dump JSON         (final) one `spool dump` line
#   @@ done              (final) nothing more will come
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
say() { echo "@@ $*"; }
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^mb\.$1=//p"; }
date -s "@$(arg epoch)" >/dev/null
for m in $(cat /modules/order); do
    insmod "/modules/$m.ko" || say "insmod $m failed"
done
# The disk appears a moment after virtio_blk is loaded.
i=0
while [ ! -b "$(arg disk)" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /data
# Mounting replays ext4's journal: what a Pi does after a cut, with no fsck by hand.
mount -t ext4 "$(arg disk)" /data || say "mount failed"
boots=$(($(cat /data/boots 2>/dev/null || echo 0) + 1))
echo $boots >/data/boots
sync
say "boot $boots"
# The only network: QEMU's guestfwd relays to the host's Dovecot and fake Discord, both
# reached as localhost:PORT (10.0.2.100 here).
ip link set lo up
net=$(arg net)
i=0
while ! ip link show "$net" >/dev/null 2>&1 && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
ip link set "$net" up
ip addr add 10.0.2.15/24 dev "$net"
echo "10.0.2.100 localhost" >/etc/hosts
cd /pc
export MAILBEACON_TEST_SEGMENT_SIZE=$(cat segment-size)
say "start"
if [ "$(arg mode)" = final ]; then
    # Run until the spool holds MAILS delivered and nothing pending, stop cleanly, dump.
    MAILBEACON_LOG=info ./mailbeacon run --config mailbeacon.toml &
    daemon=$!
    top=0
    while sleep 1 && kill -0 $daemon 2>/dev/null; do
        # What the resident set is made of when it is largest: anonymous (heap, stacks) or
        # file pages (the executable), and how many threads the daemon runs then.
        rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' /proc/$daemon/status)
        if [ "${rss:-0}" -gt "$top" ]; then
            top=$rss
            mem=$(awk '/^(RssAnon|RssFile|RssShmem|Threads):/ {printf "%s%s ", $1, $2}' /proc/$daemon/status)
            mem="$mem$(awk '/^AnonHugePages:/ {printf "AnonHugePages:%s ", $2}' /proc/$daemon/smaps_rollup)"
        fi
        ./mailbeacon status --json --config mailbeacon.toml >/tmp/status 2>/dev/null || continue
        sum() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" /tmp/status | awk '{s+=$1} END {print s+0}'; }
        [ "$(sum pending)" -eq 0 ] && [ "$(sum delivered)" -ge "$(arg expect)" ] && break
    done
    say "peak $(sed -n 's/^VmHWM:[[:space:]]*//p' /proc/$daemon/status)"
    say "memory at the largest sample: VmRSS:$top $mem(transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null))"
    kill -TERM $daemon
    wait $daemon
    say "stopped rc=$?"
    ./mailbeacon spool dump --config mailbeacon.toml >/tmp/dump 2>/tmp/err
    say "dump-rc $?"
    cat /tmp/err
    sed 's/^/@@ dump /' /tmp/dump
    say "files $(ls /data/state/spool | tr '\n' ' ') blobs=$(ls /data/state/spool/blobs | wc -l)"
    say "done"
    while true; do sleep 60; done
fi
MAILBEACON_LOG=info ./mailbeacon run --config mailbeacon.toml
say "exited rc=$?"
while true; do sleep 60; done
