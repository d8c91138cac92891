"""Readers and writers for the project's on-disk formats, usable without Kedro.

- :mod:`med_unlearning.io.fastmri` — fastMRI HDF5 volumes (lazy, slice on demand).
- :mod:`med_unlearning.io.nifti` — NIfTI images with affine and header (nibabel, lazy).
- :mod:`med_unlearning.io.checkpoint` — model checkpoints with a lineage record (safetensors).
"""
