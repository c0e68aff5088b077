"""Training: configs, the loop (checkpoints, exact resume, DDP) and losses."""
