"""stratus-compute: runs instances on one host through a virt driver."""
