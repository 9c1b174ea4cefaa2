"""stratus-conductor: database work on behalf of compute hosts, and build orchestration."""
