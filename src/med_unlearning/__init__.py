"""med_unlearning: machine unlearning for medical imaging, as a Kedro project.

The domain code (``io``, ``data``, ``models``, ``tasks``, ``training``, ``unlearning``,
``metrics``, ``reporting``) works without Kedro; ``datasets`` and ``pipelines`` wire it
into Kedro.
"""

__version__ = "0.1.0"
