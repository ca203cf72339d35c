"""Ships the atlas folder ``meshes/`` inside the wheel as ``viewer/meshes`` (metadata is in pyproject.toml)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["viewer", "viewer.*"]), "viewer.meshes"],
    package_dir={"viewer.meshes": "meshes"},
    package_data={"viewer.meshes": ["*.toml", "**/*.ply", "**/*.txt", "**/*.md"],
                  "viewer": ["fonts/*", "preset_files/*.toml"], "viewer.atlas_import": ["*.toml"]},
)
