"""A month of hosted mail filtering on a virtual clock, checked against its own ground truth."""
