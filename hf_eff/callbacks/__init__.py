"""TrainerCallbacks (and the smallest Trainer mixins they need): SWAP (:mod:`.swap`), bandit LR
(:mod:`.bandit_lr`), per-instance LR (:mod:`.instance_lr`), on the shared base of :mod:`.base`."""
