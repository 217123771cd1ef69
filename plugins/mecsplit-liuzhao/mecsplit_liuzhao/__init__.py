"""The Liu–Zhao decomposition (spec seed-models.md §1.8–1.10) and the paper's baselines (§1.11).

Public API (importable without the plugin manager):

* :func:`mecsplit_liuzhao.fp.fp_resources` — the FP resource step for a fixed association;
* :func:`mecsplit_liuzhao.cccp.cccp_association` — the CCCP association step for fixed resources;
* :func:`mecsplit_liuzhao.decomposition.decompose` — alternate registered steps until the objective
  stops decreasing.
"""

__version__ = "0.1.1"
