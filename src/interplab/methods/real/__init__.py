"""Methods for real pretrained models: induction heads, IOI-style patching, logit lens / DLA,
integrated gradients. Each function returns a dataclass; see the submodules."""
