"""Encrypted blob storage: envelope encryption over a pluggable blob store.

Call :class:`~headshots.storage.vault.EncryptedBlobs` (built by
:func:`~headshots.storage.vault.encrypted_blobs_from_settings`); the stores
under it only ever see ciphertext.
"""
