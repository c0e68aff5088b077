"""Pure, batched, differentiable tensor functions: no modules, no state, no I/O."""
