"""Signing keys (software files, PKCS#11 tokens) and the national PKI (CSCA -> DSC)."""
