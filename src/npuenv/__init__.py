"""npuenv: reproducible provisioning of Ascend NPU boxes for MindSpeed-MM."""

__version__ = "0.1.0"
