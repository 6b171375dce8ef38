"""The appliance's provisioning and service glue.

What turns a fresh SD card into a gateway: first boot (``firstboot``) generates the device's
secrets (``secrets``), Mosquitto password hashes (``passwd``) and a per-device CA with a server
certificate (``tls``); ``render`` turns the config and secrets into the texts of mosquitto.conf,
its ACL, hostapd.conf and dnsmasq.conf; ``broker_guard`` moves a corrupt broker database aside
before Mosquitto starts. Everything written to disk goes through ``write_atomic``
(``gateway/common/atomic.py``) because the power can be cut at any moment.
"""
