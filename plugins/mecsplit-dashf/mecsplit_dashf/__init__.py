"""DASHF for the ``dashf-2024`` variant (spec seed-models.md §2): Dinkelbach on the cost/quality
ratio, alternating optimisation inside (association + offloading ratio by SDR + Gaussian
randomisation + Hungarian slots; resources by the Liu–Zhao FP step, reused from
:mod:`mecsplit_liuzhao.fp`).

Public API (importable without the plugin manager):

* :func:`mecsplit_dashf.steps.dinkelbach` — generic Dinkelbach outer loop (step ``dinkelbach``);
* :func:`mecsplit_dashf.steps.sdr_association` — SDR of the association/offloading QCQP with
  Gaussian randomisation and Hungarian rounding (step ``sdr-association``);
* :func:`mecsplit_dashf.steps.hungarian_slots` — capacitated assignment by the Hungarian method on
  server slots (step ``hungarian-assignment``);
* :class:`mecsplit_dashf.model.Dashf` — numpy costs/quality of the variant, the block-1 pair data;
* :func:`mecsplit_dashf.solver.run` — the solver engine behind ``dashf`` and its baselines.
"""

__version__ = "0.1.0"
