"""train stage: ``fairseq-train --task masked_lm`` with preflight, resume and a completion marker
(``launch.py``); ``command.py`` builds the command line, ``preflight.py`` checks the inputs, ``logs.py``/``report.py``
read what fairseq logged.
"""
