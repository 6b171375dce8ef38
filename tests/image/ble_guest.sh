#!/bin/sh
# The BLE boot test's hook inside the guest (tests/image/test_boot.py puts it, ble_relay.py and
# btvirt on the kit's data partition and starts it with systemd.run= on the kernel command
# line; the image itself has no such hook). As root: makes two virtual LE controllers with
# btvirt's server (one process: its controllers hear each other's adverts), attached through
# ptys with btattach (hci_uart: Debian's arm64 kernel has no hci_vhci), powers them, lets the
# first advertise an ATC thermometer's service data (UUID 0x181a) and reports on the console, as
# "msgflo-ble-test: key=value", what the host cannot see: the controllers' addresses and the
# bridges' own lines from the journal. Every wait is bounded.
here="$(dirname "$0")"
# systemd.run= starts this early in the boot, in a unit the rest of the boot waits for: go on
# in a transient unit of its own, which the boot does not wait for.
if [ -z "${MSGFLO_BLE_TEST_DETACHED:-}" ]; then
    exec systemd-run --quiet --unit=msgflo-ble-test --setenv=MSGFLO_BLE_TEST_DETACHED=1 "$0"
fi
say() { echo "msgflo-ble-test: $*" >/dev/console; }
# AD structure (the kernel adds Flags): service data, UUID 0x181a, the ATC firmware's 13 bytes: MAC, 32.5 °C
# (0x0145), 62 %, 81 %, 2.939 V, counter.
ADV="10161a18a4c138d5d49801453e510b7b2a"

# btvirt's controllers need the kernel's crypto API (AF_ALG) for their LE encryption.
modprobe -a algif_hash algif_skcipher cmac ecb || say "error=no AF_ALG modules"
modprobe -a bluetooth hci_uart || say "error=no hci_uart module"
# All in this script's own process tree (it never exits: its unit keeps them alive).
rm -f /tmp/bt-server-*
"$here/btvirt" -s >/run/msgflo-test-btvirt.log 2>&1 &  # from here: /run is noexec
waited=0
while [ ! -S /tmp/bt-server-le ] && [ "$waited" -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
[ -S /tmp/bt-server-le ] || say "error=btvirt: $(tr '\n' ' ' </run/msgflo-test-btvirt.log)"
# One controller at a time: btvirt numbers them in the order they connect (their addresses).
for index in 0 1; do
    python3 "$here/ble_relay.py" /tmp/bt-server-le "/run/msgflo-test-pty$index" \
        >"/run/msgflo-test-relay$index.log" 2>&1 &
    waited=0
    while [ ! -e "/run/msgflo-test-pty$index" ] && [ "$waited" -lt 60 ]; do
        sleep 1
        waited=$((waited + 1))
    done
    btattach -P h4 -B "/run/msgflo-test-pty$index" >"/run/msgflo-test-attach$index.log" 2>&1 &
    waited=0
    while [ ! -e "/sys/class/bluetooth/hci$index" ] && [ "$waited" -lt 60 ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if [ ! -e "/sys/class/bluetooth/hci$index" ]; then
        say "error=hci$index: $(cat "/run/msgflo-test-relay$index.log" \
            "/run/msgflo-test-attach$index.log" /run/msgflo-test-btvirt.log | tr '\n' ' ')"
    fi
done

# hciconfig, not btmgmt: btmgmt's shell prints and sends nothing when its input is not a
# terminal (this script's is /dev/null).
up() { hciconfig "hci$1" 2>/dev/null | grep -q "UP RUNNING"; }
address() { hciconfig "hci$1" 2>/dev/null | sed -n 's/.*BD Address: \([0-9A-F:]*\).*/\1/p'; }
tries=0
while [ "$tries" -lt 60 ]; do
    tries=$((tries + 1))
    for index in 0 1; do
        up "$index" || hciconfig "hci$index" up >/dev/null 2>&1
    done
    if up 0 && up 1; then break; fi
    sleep 1
done
say "controllers_after=${tries}"
for index in 0 1; do
    if up "$index"; then
        say "hci${index}=up:$(address "$index")"
    else
        say "hci${index}=down $(hciconfig "hci$index" 2>&1 | tr '\n\t' '  ')"
    fi
done
# Through the kernel (mgmt), which drives the controller as it drives the scanning one
# (extended advertising where supported). btmgmt's shell wants a terminal: script gives it one.
# Connectable (-c): the kernel then advertises from the public address, not a private one.
added="$(script -q -c "btmgmt --index 0 add-adv -c -g -d $ADV 1" /dev/null 2>&1 | tr '\r\n' '  ')"
case "$added" in
    *"Instance added"*) say "advertising=hci0" ;;
    *) say "advertising=failed: $added" ;;
esac

# BlueZ's duty cycle as bluetoothd read it: the rendered main.conf behind the /etc link.
waited=0  # rendered when bluetooth.service starts (the first controller starts it)
while [ ! -e /etc/bluetooth/main.conf ] && [ "$waited" -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
say "main_conf=$(grep -E '^Scan(Window|Interval)AdvMonitor=' /etc/bluetooth/main.conf | paste -sd, -)"

report() {  # the first journal line of unit $1 matching $2, as key $3
    waited=0
    while [ "$waited" -lt 300 ]; do
        line="$(journalctl -q -o cat -u "$1" 2>/dev/null | grep -m1 -E "$2")"
        if [ -n "$line" ]; then
            say "$3=$line"
            return
        fi
        waited=$((waited + 2))
        sleep 2
    done
    say "$3=absent"
}
report msgflo-bridge@serial.service "hotplug:" serial_hotplug
report msgflo-bridge@ble.service "hci1: scanning" ble_scan
# BlueZ 5.66's emulator hands a legacy advert to another controller only when advertising or
# scanning is switched on (no advertising interval), and bluetoothd may have removed the
# kernel's advert instance when it took hci0 over: from here, hci0 advertises the same data
# through plain HCI commands, switched off and on every second.
adv_hci() { hcitool -i hci0 cmd 0x08 "$@" >/dev/null 2>&1; }
adv_hci 0x000a 00  # advertising off: parameters cannot change while it is on
# ADV_IND from the public address, 100 ms interval, all three channels.
adv_hci 0x0006 a0 00 a0 00 00 00 00 00 00 00 00 00 00 07 00
# 20 bytes: Flags, then the service data above; padded to 31.
adv_hci 0x0008 14 02 01 06 10 16 1a 18 a4 c1 38 d5 d4 98 01 45 3e 51 0b 7b 2a \
    00 00 00 00 00 00 00 00 00 00 00
say "adv_toggle=$(command -v hcitool >/dev/null && echo started || echo 'no hcitool')"
(while :; do adv_hci 0x000a 00; adv_hci 0x000a 01; sleep 1; done) &
# What the scanning controller hears (adverts reported to the kernel) and the bridge's lines.
reports="$(timeout 20 btmon -i hci1 2>/dev/null | grep -c -E 'LE (Extended )?Advertising Report')"
say "hci1_reports_20s=$reports"
journalctl -q -o cat -u msgflo-bridge@ble.service | grep -v -E '^$' | tail -n 8 | cut -c1-240 |
    while read -r line; do say "ble_log=$line"; done
# The 433 MHz bridge of the same boot (test_rf433_sensor_through_rtl_433_reaches_mqtt).
systemctl show -p ActiveState -p SubState -p ExecMainStatus msgflo-bridge@rf433.service |
    paste -sd' ' | while read -r line; do say "rf433_unit=$line"; done
journalctl -q -o cat -u msgflo-bridge@rf433.service | grep -v -E '^$' | tail -n 8 | cut -c1-240 |
    while read -r line; do say "rf433_log=$line"; done
wait  # keeps btvirt, the relays and btattach running
