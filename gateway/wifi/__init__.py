"""The gateway's WiFi access point: hostapd's control interface, parsed (``hostapd_ctrl``) and
driven over asyncio (``hostapd_client``)."""
