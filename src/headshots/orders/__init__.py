"""Orders: the records, their lifecycle, and the service that changes them."""
