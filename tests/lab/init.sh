#!/bin/busybox sh
# PID 1 of the lab guest (packed into the initramfs as /init by tests/lab/builder.rs).
#
# 1. Sets the guest up: the kernel modules of /etc/lab/modules.txt, configfs, the network for QEMU's
#    port forward (10.0.2.15/24), the host's root read-only at /host (9p) with the guest's own /proc,
#    /sys (with configfs), /dev and a writable tmpfs /run bound into it (that /run is also the
#    initramfs's), so that `chroot /host` runs the host's programs (the built kvnc, v4l2-ctl, ...)
#    against this kernel.
# 2. Serves the host's commands on the virtio-serial port named "lab.cmd" (tests/lab/support.rs is
#    the other end). One line per request, one framed reply per request:
#      run ID TIMEOUT_S ROOT BASE64     ROOT: "guest" (this busybox) or "host" (chroot /host);
#                                       the script runs with stdin /dev/null and is killed after
#                                       TIMEOUT_S; the reply is
#                                         @@out ID / stdout, base64 / @@err ID / stderr, base64 /
#                                         @@end ID STATUS
#      poweroff                         replies @@bye, then powers off at once
#    and "@@ready UPTIME" once, when the guest is set up.
#    Without that port (a hand-started QEMU), it gives a root shell on the console instead.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

log() { echo "lab-init: $*"; }

while read -r verb name params; do
    case "$verb" in
        load) modprobe "$name" $params || log "modprobe $name failed" ;;
    esac
done </etc/lab/modules.txt

mount -t configfs configfs /sys/kernel/config || log "no configfs"

ip link set lo up
if ip link set eth0 up; then
    ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || log "network set-up failed"
else
    log "no eth0"
fi

# cache=loose: starting a host program costs about 0.1 s instead of 0.45 s under TCG. The price: a
# host file that changes while the guest runs may look stale in the guest (new files are fine).
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host; then
    mount --rbind /proc /host/proc
    mount --rbind /sys /host/sys
    mount --rbind /dev /host/dev
    # /host/tmp stays the host's (read-only) /tmp: a CARGO_TARGET_DIR there keeps kvnc reachable.
    mount -t tmpfs -o mode=0755 tmpfs /host/run
    # The same /run on both sides, so that scripts in either root name files alike.
    mount --bind /host/run /run
else
    log "9p mount of the host's root failed"
    mount -t tmpfs -o mode=0755 tmpfs /run
fi
mkdir -p /run/lab/tmp /tmp/lab

port=""
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = lab.cmd ] && port=/dev/${p##*/}
done
if [ -z "$port" ]; then
    log "no lab.cmd port: root shell on the console (the host's root is at /host)"
    exec setsid cttyhack sh
fi

HOST_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/run/lab TMPDIR=/run/lab/tmp"

# run ID TIMEOUT ROOT BASE64: see the header.
run() {
    echo "$4" | base64 -d >/run/lab/cmd.sh
    if [ "$3" = host ]; then
        env -i $HOST_ENV timeout -s KILL "$2" chroot /host /bin/sh /run/lab/cmd.sh \
            </dev/null >/tmp/lab/out 2>/tmp/lab/err
    else
        timeout -s KILL "$2" sh /run/lab/cmd.sh </dev/null >/tmp/lab/out 2>/tmp/lab/err
    fi
    status=$?
    {
        echo "@@out $1"
        base64 </tmp/lab/out
        echo "@@err $1"
        base64 </tmp/lab/err
        echo "@@end $1 $status"
    } >&3
}

exec 3<>"$port"
echo "@@ready $(cut -d' ' -f1 /proc/uptime)" >&3
while :; do
    # A read fails (end of file) while the host end is not connected: wait for it to come back.
    if ! IFS= read -r line <&3; then
        sleep 0.1
        continue
    fi
    set -- $line
    case "$1" in
        run) run "$2" "$3" "$4" "$5" ;;
        poweroff)
            echo "@@bye" >&3
            sync
            poweroff -f
            ;;
        *) echo "@@unknown $1" >&3 ;;
    esac
done
