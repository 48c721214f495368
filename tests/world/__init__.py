"""The hermetic test world: a CA, an HTTPS server on loopback, synthetic upstream repos and wheels.

Modules: ``ca`` (trustme CA), ``server`` (git smart HTTP, static files, two PEP 503 indexes: /simple
and the PyTorch CPU index's stand-in /whl/cpu, fault injection), ``upstream`` (bare repos shaped like
MindSpeed-MM, MindSpeed, Megatron-LM), ``builds`` (Ascend apex + NVIDIA apex, decord + its submodules,
the test video), ``wheels`` (stand-in torch/torch_npu wheels, real build wheels fetched once), ``cann``
(a stand-in CANN tree), ``npu`` (device files, npu-smi, processes holding NPUs) and ``fixtures`` (pytest
fixtures). README.md says which real behaviours each stand-in has, and which it lacks.
"""
