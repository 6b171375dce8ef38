#!/bin/sh
# Install the gateway's units and system settings into a root filesystem (default /) and
# enable them. Used by image/rootfs/customize.sh; works on a Raspberry Pi OS / Debian install
# that has the gateway's tools in /usr/local/bin.
#
#   services/install.sh [ROOT]
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
root="${1:-/}"
install -d "$root/etc/systemd/system" "$root/etc/udev/rules.d" "$root/etc/systemd/journald.conf.d" \
    "$root/etc/sysctl.d" "$root/etc/systemd/network" "$root/etc/msgflo-gateway" \
    "$root/usr/lib/sysusers.d"
for unit in "$here"/systemd/*; do
    if [ -d "$unit" ]; then
        # Drop-ins: one bridge instance's extra rights, the gateway's settings for BlueZ.
        install -d "$root/etc/systemd/system/${unit##*/}"
        install -m 644 "$unit"/*.conf "$root/etc/systemd/system/${unit##*/}/"
    else
        install -m 644 "$unit" "$root/etc/systemd/system/"
    fi
done
install -m 644 "$here/udev/90-msgflo-ap.rules" "$here/udev/60-msgflo-gpio.rules" \
    "$here/udev/60-msgflo-i2c.rules" "$root/etc/udev/rules.d/"
install -m 644 "$here/system/journald.conf" "$root/etc/systemd/journald.conf.d/msgflo-gateway.conf"
install -m 644 "$here/system/sysctl.conf" "$root/etc/sysctl.d/50-msgflo-gateway.conf"
install -m 644 "$here/system/20-wired.network" "$here/system/10-wlan.network" "$root/etc/systemd/network/"
# The services' own users (msgflo-coordinator, msgflo-bridge), made now: the first boot's
# root filesystem is read-only.
install -m 644 "$here/system/sysusers.conf" "$root/usr/lib/sysusers.d/msgflo-gateway.conf"
if [ "$root" = / ] || [ "$root" = "" ]; then
    systemd-sysusers msgflo-gateway.conf
else
    systemd-sysusers --root="$root" msgflo-gateway.conf
fi
if [ "$root" = / ] || [ "$root" = "" ]; then
    systemctl enable msgflo-gateway.target msgflo-firstboot.service msgflo-broker.service \
        msgflo-coordinator.service msgflo-dashboard.socket msgflo-bridge@serial.service \
        msgflo-bridge@ble.service msgflo-bridge@rf433.service msgflo-bridge@health.service \
        msgflo-bridge@gpio.service msgflo-clock.service msgflo-clock.timer msgflo-users.path msgflo-adopt.path \
        msgflo-devices.path msgflo-poweroff.path >/dev/null 2>&1
else
    systemctl --root="$root" enable msgflo-gateway.target msgflo-firstboot.service \
        msgflo-broker.service msgflo-coordinator.service msgflo-dashboard.socket \
        msgflo-bridge@serial.service msgflo-bridge@ble.service msgflo-bridge@rf433.service \
        msgflo-bridge@health.service msgflo-bridge@gpio.service msgflo-clock.service \
        msgflo-clock.timer msgflo-users.path \
        msgflo-adopt.path msgflo-devices.path msgflo-poweroff.path >/dev/null 2>&1
fi
