"""Data preparation: datasets, HDF5, sources, text corpora, embedding, labels and ground truth."""
