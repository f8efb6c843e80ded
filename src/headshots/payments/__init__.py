"""Payments: a checkout per order, and signed confirmations that unlock it."""
