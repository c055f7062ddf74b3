"""``python -m koroberta.spm.trainer_process``: the SentencePiece trainer process that
:func:`koroberta.spm.train.train_vocab` starts (so that Ctrl-C can stop the C++ trainer): a pickled job on stdin, the
pickled result on stdout. Only our own parent process writes the job."""

import pickle
import sys

from koroberta.spm.train import run_trainer_job

if __name__ == "__main__":
    result = run_trainer_job(pickle.load(sys.stdin.buffer))
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()
