"""The local stack: the same functions against a moto server and an ePROM simulator, without AWS or ePROM."""
