"""View builders: instance dicts to the compute API's response bodies."""
