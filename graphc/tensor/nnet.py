"""Neural-network ops: graphc.tensor.nnet (being written)."""
