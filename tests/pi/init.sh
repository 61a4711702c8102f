#!/bin/busybox sh
# /init of the emulated Raspberry Pi 3B's initramfs (tests/pi.rs builds the image and reads
# the serial console). Runs each scenario in turn and frames its output:
#   @@ section NAME       what follows belongs to NAME
#   T <uptime> led=… …    a change of the GPIO lines seen by gpio_watch (kernel debugfs view)
#   @@ mark WHAT <uptime> a moment the script acted (e.g. sent SIGTERM)
#   @@ end NAME rc=N      the exit code of the command under test
#   @@ done               the host stops QEMU (neither poweroff nor reboot ends this board)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmp /tmp
# The board has no clock: take the host's time, or every spooled mail would be from the future.
date -s "@$(cat /etc/epoch)" >/dev/null
ip link set lo up
cd /pi
for chip in /sys/class/gpio/gpiochip*; do
    [ "$(cat "$chip/label")" = pinctrl-bcm2835 ] && GPIO_BASE=$(cat "$chip/base")
done

say() { echo "@@ $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
LINES="led=17 buzzer=27"

# NAME COMMAND...: a command that ends by itself.
once() {
    name=$1
    shift
    say "section $name"
    "$@" >/tmp/out 2>&1
    rc=$?
    cat /tmp/out
    say "end $name rc=$rc"
}

# NAME CONFIG SECONDS: the daemon under watch for SECONDS, then SIGTERM.
watched() {
    name=$1 config=$2 seconds=$3
    say "section $name"
    ./gpio_watch pinctrl-bcm2835 $LINES >/tmp/trace &
    watcher=$!
    sleep 0.5
    say "mark start $(now)"
    MAILBEACON_LOG=info ./mailbeacon run --config "$config" 2>/tmp/log &
    daemon=$!
    sleep "$seconds"
    say "mark sigterm $(now)"
    kill -TERM "$daemon"
    wait "$daemon"
    rc=$?
    say "mark exited $(now)"
    sleep 0.5
    kill "$watcher"
    cat /tmp/trace /tmp/log
    say "end $name rc=$rc"
}

# NAME CONFIG: the daemon is expected to stop at once; watched while it tries.
refused() {
    name=$1 config=$2
    say "section $name"
    ./gpio_watch pinctrl-bcm2835 $LINES >/tmp/trace &
    watcher=$!
    sleep 0.5
    ./mailbeacon run --config "$config" >/tmp/out 2>&1 &
    daemon=$!
    # A daemon that does not stop is killed after 30 s, and the test sees rc=137.
    (sleep 30 && kill -KILL "$daemon" 2>/dev/null) &
    guard=$!
    wait "$daemon"
    rc=$?
    kill "$guard" 2>/dev/null
    sleep 0.5
    kill "$watcher"
    cat /tmp/trace /tmp/out
    say "end $name rc=$rc"
}

say "boot $(uname -r) $(uname -m) at $(now)"
once version ./mailbeacon --version
once check ./mailbeacon check --config board/mailbeacon.example.toml
once selftest ./mailbeacon selftest --dir /tmp
once chips cat /sys/kernel/debug/gpio

# Boot self-test, ok heartbeats while the name lookup times out (5 s), then the IMAP account is
# unreachable (no network here): fast blink + one chirp.
watched imap-down imap-down.toml 11

# A spool written on the host with more pending mails than spool_alarm, a sink answering 404
# Unknown Webhook (busybox httpd running webhook-gone.cgi): solid on, one long tone; SIGTERM
# turns it off.
once spool-ls ./mailbeacon spool ls --config alarm.toml
httpd -p 127.0.0.1:8080 -h /www
watched alarm alarm.toml 8

# Wrong chip label: nothing is claimed, the error names the chip and what was found.
refused wrong-chip wrong-chip.toml

# The buzzer line is held by someone else (sysfs): the error names chip, line and holder, and
# the LED line already claimed is released again.
echo $((GPIO_BASE + 27)) >/sys/class/gpio/export
refused line-in-use imap-down.toml
echo $((GPIO_BASE + 27)) >/sys/class/gpio/unexport

say "done at $(now)"
while true; do sleep 60; done
