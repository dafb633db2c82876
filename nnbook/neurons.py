"""The thesis's neuron-by-neuron backpropagation formulas (filled in below)."""
