"""invdesign: property-guided inverse design of molecules and crystals."""

__version__ = "0.1.0"
