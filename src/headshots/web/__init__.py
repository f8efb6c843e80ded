"""The web service: JSON API and pages."""
