"""Test stand-in for MindSpeed, made by npuenv's tests. NOT Ascend's MindSpeed."""

STAND_IN = True
__version__ = "0.8.0"
