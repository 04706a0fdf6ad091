"""Shared layer: the ePROM v2 contract, national ids, the ApiKey, the ePROM client and the order store."""
