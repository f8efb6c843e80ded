"""headshots: professional headshots from one selfie, self-hosted."""

__version__ = "0.1.0"
