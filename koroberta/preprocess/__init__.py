"""preprocess stage: split text -> spm ids -> fairseq mmap data-bin. ``build.py`` is the stage (fused writer),
``encode.py`` the parallel encoder, ``binarize.py`` the fairseq-preprocess reference path.
"""
