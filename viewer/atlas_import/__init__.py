"""Importing a BodyParts3D download into a Dorsum atlas (``dorsum atlas import``).

The data never ship with Dorsum: a user names the folder or zip of their own download, and the
importer writes a full atlas (``docs/atlas-format.md``) into the user's data folder.
"""
