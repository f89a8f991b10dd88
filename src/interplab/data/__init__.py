"""Data sets: the data organisms are trained and scored on, and how it is loaded or generated.

    digits             scikit-learn's 8×8 digits, split and planted for data attribution
    passages           synthetic text with planted passages (next-token examples)
    tabular            tabular data sets (German credit, breast cancer, digits) with feature
                       metadata, for the decision organisms
    sentiment_lexicon  the VADER lexicon, the labelling rule of the sentiment templates
    grouped            data split into (label × cue) groups, for spurious-cue organisms
    synthetic          synthetic activations built from known features (dictionary ground truth)
    bios, spurious     the data of the text and image spurious-cue organisms

Bundled files (``german_credit.csv``, with ``ATTRIBUTION.md``) ship as package data. Modules
here import only ``interplab.core``/``errors`` and numpy, torch or scikit-learn: architectures
and trained-organism builders stay in :mod:`interplab.models` and :mod:`interplab.zoo`.
"""
