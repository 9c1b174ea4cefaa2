"""stratus-scheduler: picks a host for each instance and claims its resources."""
