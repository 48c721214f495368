"""Models: the weights in the persistent folder, their conversion to MindSpeed-MM's checkpoint format, and
MindSpeed-MM's per-size config files generated from each model's config.json."""
