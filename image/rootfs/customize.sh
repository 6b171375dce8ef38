#!/bin/sh
# Runs inside the arm64 root filesystem (chroot under qemu-user), called by image/build.sh:
# installs the gateway and its services and makes the system an offline appliance with a
# read-only root. Files staged by build.sh are in /tmp/msgflo-image.
set -eu
stage=/tmp/msgflo-image
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

# The gateway: a venv that also sees Debian's PyYAML and cryptography, and only wheels
# staged by build.sh (no network here), Theengs Decoder (the ble extra) among them.
python3 -m venv --system-site-packages /opt/msgflo-gateway
/opt/msgflo-gateway/bin/pip install --quiet --no-index --no-cache-dir --no-compile \
    --find-links "$stage/wheels" "msgflo-gateway[ble]"
for tool in /opt/msgflo-gateway/bin/gateway-* /opt/msgflo-gateway/bin/msgflo*; do
    ln -sf "$tool" /usr/local/bin/
done
# pip built the venv and compiled its bytecode; the read-only appliance installs nothing more
# (a new release is a new image): pip, setuptools and the wheels venv was made from go.
/opt/msgflo-gateway/bin/python -m pip uninstall --quiet --yes pip setuptools
dpkg --purge python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl >/dev/null
# The public CAs came only for pip's wheel. An offline kit checks no certificate but its own
# CA's, and aiohttp loads the whole bundle twice into its default TLS contexts on import: 80 ms
# of the coordinator's 0.47 s start on a laptop, ten times that emulated (docs/appliance.md,
# "Boot to ready").
dpkg --purge ca-certificates >/dev/null
# usrmerge converts a split /usr, which mmdebstrap never made; it and its Perl (about 45 MiB)
# go, usr-is-merged (image/packages.list) keeps init-system-helpers' dependency met.
dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl \
    libperl5.36 perl-modules-5.36 >/dev/null
mkdir -p /usr/share/msgflo-gateway
cp -r "$stage/examples" /usr/share/msgflo-gateway/demo
rm -rf /usr/share/msgflo-gateway/demo/__pycache__
# Bytecode compiled once, here: the root is read-only, so a module without it would be compiled
# again at every start. unchecked-hash: valid without looking at the source's time (which
# the build sets to SOURCE_DATE_EPOCH) and without hashing the source at each import;
# PYTHONHASHSEED=0: the same set constants in the same order, so two builds write the same
# files.
PYTHONHASHSEED=0 /opt/msgflo-gateway/bin/python -m compileall -q -f -j 0 \
    --invalidation-mode unchecked-hash /opt/msgflo-gateway/lib /usr/share/msgflo-gateway/demo

# Units, udev rule, journald, network, sysctl; enables the gateway's units.
sh "$stage/services/install.sh" /

# The data partition's first content (image/assemble.sh moves /var/lib/msgflo-gateway
# onto it): the config, the demo graph, the broker's and the clock's state directories. The
# graph lives in the coordinator's own directory, the one place its user may write (the
# services' users come from services/install.sh: msgflo-coordinator, msgflo-bridge).
data=/var/lib/msgflo-gateway
mkdir -p "$data/mosquitto" "$data/timesync" "$data/coordinator"
cp "$stage/services/gateway.yaml" "$data/gateway.yaml"
sed -i 's|^\(\s*library:\).*|\1 /usr/share/msgflo-gateway/demo/library.yaml|' "$data/gateway.yaml"
sed -i "s|^\(\s*graph:\).*|\1 $data/coordinator/graph.fbp|" "$data/gateway.yaml"
cp /usr/share/msgflo-gateway/demo/demo.fbp "$data/coordinator/graph.fbp"
chown mosquitto:mosquitto "$data/mosquitto"
chmod 750 "$data/mosquitto"
chown -R msgflo-coordinator:msgflo-coordinator "$data/coordinator"
chown systemd-timesync:systemd-timesync "$data/timesync"
mkdir -p /etc/msgflo-gateway
ln -sf "$data/gateway.yaml" /etc/msgflo-gateway/gateway.yaml

# BlueZ: main.conf is rendered from gateway.yaml (the BLE scan duty cycle) into
# bluetooth.service's runtime directory before each start (services/systemd/bluetooth.service.d).
ln -sf /run/msgflo-gateway/bluetooth/main.conf /etc/bluetooth/main.conf
# btvirt (virtual controllers over /dev/vhci) is for the boot test only: build.sh keeps it
# beside the image, the image does not carry bluez-test-tools.
mkdir -p "$stage/test-tools"
cp /usr/bin/btvirt "$stage/test-tools/"
dpkg --purge bluez-test-tools >/dev/null

# Offline battery appliance: no periodic maintenance jobs, no services we replace.
systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    mosquitto.service hostapd.service wpa_supplicant.service \
    systemd-networkd-wait-online.service >/dev/null 2>&1
systemctl enable systemd-networkd.service systemd-timesyncd.service >/dev/null 2>&1

echo msgflo-gateway >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tmsgflo-gateway\n::1\t\tlocalhost ip6-localhost\n' >/etc/hosts
cp "$stage/files/fstab" /etc/fstab
cp "$stage/files/overlayroot.conf" /etc/overlayroot.conf
cp "$stage/files/raspi-firmware" /etc/default/raspi-firmware
cp "$stage/files/raspi-extra-cmdline" /etc/default/raspi-extra-cmdline
cp "$stage/files/raspi-firmware-custom" /etc/default/raspi-firmware-custom
cp "$stage/files/modprobe-msgflo.conf" /etc/modprobe.d/msgflo-gateway.conf
cp "$stage/files/modules-load-msgflo.conf" /etc/modules-load.d/msgflo-gateway.conf
# The data partition grows to the end of the card at first boot.
install -m 755 "$stage/files/msgflo-grow-data" /usr/local/sbin/msgflo-grow-data
install -m 644 "$stage/files/msgflo-grow-data.service" /etc/systemd/system/
systemctl enable msgflo-grow-data.service >/dev/null 2>&1

# One small initramfs, built once: MODULES=list with what the Pi's SD card, USB storage and
# the QEMU boot test need (MODULES=most takes ~14 min under qemu-user and 37 MB).
cp "$stage/files/initramfs.conf" /etc/initramfs-tools/conf.d/msgflo-gateway.conf
cp "$stage/files/initramfs-modules" /etc/initramfs-tools/modules
install -m 755 "$stage/files/initramfs-hook-reproducible" /etc/initramfs-tools/hooks/zz-msgflo-reproducible
# Without this fsck never runs: initramfs-tools cannot tell the root's type in a chroot.
echo FSTYPE=ext4 >/etc/initramfs-tools/conf.d/rootfstype
kernel="$(ls /lib/modules | sort -V | tail -1)"
update-initramfs -c -k "$kernel" >/dev/null
DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$kernel" >/dev/null 2>&1 ||
    DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware "$kernel"
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
