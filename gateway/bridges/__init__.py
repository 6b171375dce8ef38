"""Bridges: drivers that make devices outside MQTT (USB serial, radio) msgflo participants."""
