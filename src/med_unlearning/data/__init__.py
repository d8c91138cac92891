"""Data handling that needs no Kedro (metadata tables, sample-data generation, labels, masks).

Each module documents itself, e.g. :mod:`med_unlearning.data.metadata` builds the fastMRI
and MRBrainS18 metadata tables from the raw files and joins the user's extra columns.
"""
