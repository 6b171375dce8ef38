"""gateway/common/: the atomic writer and the YAML loader every package uses."""
