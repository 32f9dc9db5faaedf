"""TrainerCallbacks (and the smallest Trainer mixins they need): SWAP, bandit LR, per-instance LR."""
