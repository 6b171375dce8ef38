"""gateway.yaml: loading, validation messages, the shipped files and gateway-config."""
