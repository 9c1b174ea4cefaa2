"""The embedded Identity v3 service (a compact Keystone).

Users, projects and role assignments live in the shared database; tokens are
Fernet tokens (:mod:`stratus.identity.tokens`) that every API process can
validate with the shared key file, without a database round trip beyond a
briefly cached role lookup (:mod:`stratus.identity.auth`).
"""
