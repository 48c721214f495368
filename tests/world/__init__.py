"""The hermetic test world: a CA, an HTTPS server on loopback, synthetic upstream repos and wheels.

Modules: ``ca`` (trustme CA), ``server`` (git smart HTTP, static files, PEP 503 index, fault
injection), ``upstream`` (bare repos shaped like MindSpeed-MM, MindSpeed, Megatron-LM), ``wheels``
(stand-in torch/torch_npu wheels, real build wheels fetched once) and ``fixtures`` (pytest fixtures).
"""
